# batchk8s: `make run` shows what the app would do (no Azure account needed); `make test` runs everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
NODE_STAMP := node_modules/.installed

.PHONY: run test lint unit bench mutate clean

run: $(RUNTIME_STAMP)
	$(PY) -m batchk8s plan --settings local.settings.json.example
	$(PY) -m batchk8s schedules plan --file examples/schedules.json --hours 24 --settings local.settings.json.example

test: $(DEV_STAMP) $(NODE_STAMP) lint
	$(PY) -m pytest -q

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
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache mutants

# Mutation testing of the rules (slow: not part of `test`; docs/development.md). MUTANTS picks the functions
# (mutmut name patterns); `make mutate MUTANTS='batchk8s.schedule.*'` runs one module. Survivors are kept in
# mutants/ between runs: `.venv/bin/mutmut results`, `.venv/bin/mutmut show <name>`.
MUTANTS ?= 'batchk8s.schedule.*' 'batchk8s.tes.validation.*' \
	'batchk8s.batch.jobs.x__mark_blocked*' 'batchk8s.batch.jobs.x__failed*' 'batchk8s.batch.jobs.x_summarize*' \
	'batchk8s.batch.jobs.x_job_spec*' 'batchk8s.batch.tasks.*' \
	'batchk8s.batch.pools.x_comparable*' 'batchk8s.batch.pools.x_spec_differences*' \
	'batchk8s.batch.pools.x__strip_query*' \
	'batchk8s.settings.x*Secret*' 'batchk8s.settings.x*ConnectionString*' 'batchk8s.settings.x__masked_value*' \
	'batchk8s.settings.x__no_credentials*' \
	'batchk8s.errors.*' 'batchk8s.schedules.state.*'
MUTATE_JOBS ?= 2

mutate: $(DEV_STAMP) $(NODE_STAMP)
	mkdir -p mutants && ln -sfn ../node_modules mutants/node_modules
	nice -n 15 $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS)
	$(VENV)/bin/mutmut results
