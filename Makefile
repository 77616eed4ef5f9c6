# Waitpoint: `make run` serves the app, `make test` runs every test, `make test-fast` the
# in-process ones (seconds; no servers, browsers or npm: `pytest -m "not slow"`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-fast lint bench clean

$(BIN)/waitpoint: pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e ./sdk
	touch $@

run: $(BIN)/waitpoint
	$(BIN)/waitpoint setup
	$(BIN)/waitpoint serve --host $(HOST) --port $(PORT)

test: $(BIN)/waitpoint
	tests/prepare
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(BIN)/waitpoint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The benchmark suite (about 6 minutes on 2 cores): figures in bench/results/*.json,
# the summary table last (bench/results/summary.json). Needs the local PostgreSQL.
bench: $(BIN)/waitpoint
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	cd bench && ../$(BIN)/python hotpaths.py sqlite postgresql
	cd bench && ../$(BIN)/python scale.py --sizes 10000,100000,1000000
	cd bench && ../$(BIN)/python expiry.py sqlite postgresql
	cd bench && ../$(BIN)/python wakeup.py
	cd bench && ../$(BIN)/python ratelimit.py sqlite postgresql
	cd bench && ../$(BIN)/python webhooks.py sqlite postgresql
	cd bench && ../$(BIN)/python mail.py sqlite postgresql
	cd bench && ../$(BIN)/python report.py

lint: $(BIN)/waitpoint
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests

clean:
	rm -rf $(VENV) tests/compat/node_modules tests/a11y/node_modules
