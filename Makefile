# batchk8s: `make run` shows what the app would do (no Azure account needed); `make test` runs everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
# checkov, pycep-parser, azure-functions-doctor, actionlint: their own venv (checkov's pins conflict with ours).
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
NGINX := /usr/sbin/nginx

.PHONY: run test fuzz lint unit bench docs mutate clean

run: $(RUNTIME_STAMP)
	$(PY) -m batchk8s plan --settings local.settings.json.example
	$(PY) -m batchk8s schedules plan --file examples/schedules.json --hours 24 --settings local.settings.json.example
	@mkdir -p out
	$(PY) -m batchk8s schedules plan --file examples/schedules.json --html out/schedules-week.html --settings local.settings.json.example

test: $(DEV_STAMP) $(NODE_STAMP) $(TOOLS_STAMP) $(CHROMIUM) $(NGINX) lint
	$(PY) -m pytest -q

# A longer schemathesis run than `make test`'s (fixed seed, 20 examples per operation): new inputs every time.
FUZZ_EXAMPLES ?= 200
fuzz: $(DEV_STAMP) $(NODE_STAMP)
	BATCHK8S_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BATCHK8S_FUZZ_SEED=random $(PY) -m pytest -q -p no:cacheprovider \
		-o timeout=3600 tests/fuzz

# The unit tests alone, in seconds (no Azurite, fakes, browser or lint): the quick loop while editing.
unit: $(DEV_STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck --severity=style scripts/*.sh $(wildcard tests/scripts/stubs/*) .ci/run

# Runs every bench/bench_*.py and writes what each printed to bench/README.md, with the date.
bench: $(DEV_STAMP) $(NODE_STAMP)
	$(PY) bench/collect.py

# The generated references: the settings (from batchk8s/settings.py) and the HTTP API (from its OpenAPI document).
docs: $(RUNTIME_STAMP)
	$(PY) -m batchk8s config reference --settings tests/data/empty.settings.json > docs/settings.md
	$(PY) -m batchk8s openapi --markdown --settings tests/data/empty.settings.json > docs/http-api.md

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(RUNTIME_STAMP)

$(TOOLS)/bin/python:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade pip

$(TOOLS_STAMP): requirements-tools.txt | $(TOOLS)/bin/python
	$(TOOLS)/bin/python -m pip install -q -r requirements-tools.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# $(call apt_install,PACKAGE,WHAT NEEDS IT): Debian's package, installed by make test when run as root.
define apt_install
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1); } || \
			{ echo "error: apt-get could not install $(1) (needed by $(2))" >&2; exit 1; }; \
	else \
		echo "error: $@ is missing; install Debian's $(1) package (as root: apt-get install $(1))" >&2; \
		exit 1; \
	fi
endef

# The timeline page is tested in a real browser: Debian's Chromium (never a browser build fetched at run time).
$(CHROMIUM):
	$(call apt_install,chromium,the timeline page's browser tests)

# The real nginx runs TESK's authenticating proxy configuration (k8sresources/tesk/35-auth-proxy.yaml).
$(NGINX):
	$(call apt_install,nginx,the TESK authenticating proxy's tests)

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .pytest_cache .ruff_cache mutants

# Mutation testing of the rules (slow: not part of `test`; docs/development.md). MUTANTS picks the functions
# (mutmut name patterns); `make mutate MUTANTS='batchk8s.ncrontab.*'` runs one module. Survivors are kept in
# mutants/ between runs: `.venv/bin/mutmut results`, `.venv/bin/mutmut show <name>`.
MUTANTS ?= 'batchk8s.ncrontab.*' 'batchk8s.tes.validation.*' \
	'batchk8s.batch.jobs.x__mark_blocked*' 'batchk8s.batch.jobs.x_summarize*' 'batchk8s.batch.reports.*' \
	'batchk8s.batch.jobs.x_job_spec*' 'batchk8s.batch.tasks.*' \
	'batchk8s.batch.pool_spec.x_comparable*' 'batchk8s.batch.pool_spec.x_spec_differences*' \
	'batchk8s.batch.pool_spec.x__strip_query*' \
	'batchk8s.settings.x*Secret*' 'batchk8s.settings.x*ConnectionString*' 'batchk8s.settings.x__masked_value*' \
	'batchk8s.settings.x__no_credentials*' \
	'batchk8s.errors.*' 'batchk8s.problems.*' 'batchk8s.schedules.state.*'
MUTATE_JOBS ?= 2

mutate: $(DEV_STAMP) $(NODE_STAMP)
	mkdir -p mutants && ln -sfn ../node_modules mutants/node_modules
	nice -n 15 $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS)
	$(VENV)/bin/mutmut results
