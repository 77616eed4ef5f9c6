# Waitpoint: `make run` serves the app, `make test` runs every test, `make test-fast` the
# in-process ones (seconds; no servers, browsers or npm: `pytest -m "not slow"`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-fast lint bench bench-peer clean

# Serving needs the app and the SDK; the tests, benchmarks and lint add the test extras.
SERVE := $(VENV)/.installed-serve
TESTING := $(VENV)/.installed-test

$(SERVE): pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . -e ./sdk
	touch $@

$(TESTING): $(SERVE)
	$(BIN)/python -m pip install --quiet -e '.[test]' -e ./sdk
	touch $@

run: $(SERVE)
	$(BIN)/waitpoint setup
	$(BIN)/waitpoint serve --host $(HOST) --port $(PORT)

test: $(TESTING)
	tests/prepare
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(TESTING)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The benchmark suite (about 15 minutes on 2 cores): figures in bench/results/*.json,
# the summary table last (bench/results/summary.json). Needs the local PostgreSQL.
bench: $(TESTING)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	cd bench && ../$(BIN)/python hotpaths.py sqlite postgresql
	cd bench && ../$(BIN)/python scale.py --sizes 10000,100000,1000000
	cd bench && ../$(BIN)/python expiry.py sqlite postgresql
	cd bench && ../$(BIN)/python wakeup.py
	cd bench && ../$(BIN)/python ratelimit.py sqlite postgresql
	cd bench && ../$(BIN)/python webhooks.py sqlite postgresql
	cd bench && ../$(BIN)/python mail.py sqlite postgresql
	cd bench && ../$(BIN)/python report.py

# Beside n8n, the workflow engine people would otherwise use (about 2 minutes; the first run
# also installs n8n 2.8.4 from npm into $$TMPDIR/peer-n8n, ~2.3 GB): bench/results/peer.json.
bench-peer: $(TESTING)
	cd bench && ../$(BIN)/python peer.py sqlite postgresql
	cd bench && ../$(BIN)/python report.py

lint: $(TESTING)
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests

clean:
	rm -rf $(VENV) tests/compat/node_modules tests/a11y/node_modules
