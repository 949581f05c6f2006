# batchk8s: `make run` shows what the app would do (no Azure account needed); `make test` runs everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
NODE_STAMP := node_modules/.installed

.PHONY: run test fuzz lint unit bench clean

run: $(RUNTIME_STAMP)
	$(PY) -m batchk8s plan --settings local.settings.json.example
	$(PY) -m batchk8s schedules plan --file examples/schedules.json --hours 24 --settings local.settings.json.example

test: $(DEV_STAMP) $(NODE_STAMP) lint
	$(PY) -m pytest -q

# A longer schemathesis run than `make test`'s (fixed seed, 20 examples per operation): new inputs every time.
FUZZ_EXAMPLES ?= 200
fuzz: $(DEV_STAMP) $(NODE_STAMP)
	BATCHK8S_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BATCHK8S_FUZZ_SEED=random $(PY) -m pytest -q -p no:cacheprovider \
		-o timeout=3600 tests/fuzz

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck --severity=style scripts/*.sh $(wildcard tests/scripts/stubs/*) .ci/run

bench: $(DEV_STAMP) $(NODE_STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(RUNTIME_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
