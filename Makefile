# `make run` and `make test` are all a newcomer needs; each sets up what it uses.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test

.PHONY: run install install-dev test test-perf test-postgres test-deploy lint check ci bench bench-search wrk fuzz lock clean e2e chromium nginx

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Exact versions with hashes from the lock files; the project itself without dependencies.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Serve on http://127.0.0.1:8000 with SQLite under ./data (migrates, creates the first admin).
run: install
	$(BIN)/inventory serve

## The test suite on SQLite (no services needed). Leaves out the `perf` tests (pyproject.toml).
test: install-dev
	$(BIN)/pytest

## The `perf` tests: statement, round-trip and loop-turn counts (SQLite; with
## TEST_DATABASE_URL=postgresql+asyncpg://... also PostgreSQL's).
test-perf: install-dev
	$(BIN)/pytest -m perf

## The same suite on PostgreSQL: each run creates (and drops) a database of its own on the
## server PG_TEST_URL names (default: the local one, as postgres).
test-postgres: install-dev
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -m "not e2e and not deploy and not perf"

## nginx in front of two instances, on a PostgreSQL database of its own (created and dropped
## on PG_TEST_URL's server) and Redis (TEST_REDIS_URL); tests/deploy. Needs nginx: see below.
test-deploy: install-dev nginx
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -m deploy

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

## Models and migrations agree (on a scratch SQLite database).
check: install-dev
	rm -rf .check && DATA_DIR=.check $(BIN)/alembic upgrade head && DATA_DIR=.check $(BIN)/alembic check; \
	  status=$$?; rm -rf .check; exit $$status

ci: chromium nginx test lint check fuzz test-deploy test-postgres

## Property-based API fuzzing (schemathesis) against a real server on a fresh SQLite database,
## bounded by FUZZ_MAX_EXAMPLES per operation and FUZZ_MAX_SECONDS; see tests/fuzz_api.py.
fuzz: install-dev
	$(BIN)/python tests/fuzz_api.py

## The browser test of /docs (tests/e2e): Debian's chromium, installed with sudo apt-get when
## missing (see `chromium` below; Playwright's own browser download cannot work offline). `make test` runs it too when
## chromium is there, and skips it otherwise.
e2e: install-dev chromium
	$(BIN)/pytest -m e2e

## Installs Debian's chromium when /usr/bin/chromium is missing, WITHOUT ASKING: it runs
## `sudo apt-get update` and `sudo apt-get install -y chromium` (no sudo as root). `make e2e`
## and `make ci` run it; install chromium yourself first if you would rather they did not.
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  echo "make chromium: /usr/bin/chromium is missing; installing it now with $${SUDO:+sudo }apt-get update && $${SUDO:+sudo }apt-get install -y chromium"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

## Debian's nginx for `make test-deploy`: runs `apt-get install nginx` (with sudo unless root)
## when /usr/sbin/nginx is missing (on a host with systemd, apt also starts the package's own
## site on port 80; the test does not use it: it runs nginx with its own files and port).
nginx:
	@test -x /usr/sbin/nginx || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  echo "make nginx: /usr/sbin/nginx is missing; installing it now with $${SUDO:+sudo }apt-get update && $${SUDO:+sudo }apt-get install -y nginx"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q nginx; }

## Benchmarks (not part of the tests); see bench/README.md.
## With the peer: make bench BENCH_ARGS="--peer ../shared/bench/peer_app.py"
BENCH_ARGS ?=
bench: install-dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## Search, sort, import and export at catalogue size (issue 16): 100,000 items on SQLite and
## 1,000,000 on PostgreSQL (database bench_search, wiped), one worker, wrk -c8; about 15 min.
## make bench-search BENCH_SEARCH_ARGS="--db sqlite --quick"; see bench/README.md.
BENCH_SEARCH_ARGS ?=
bench-search: install-dev wrk
	$(BIN)/python bench/search.py $(BENCH_SEARCH_ARGS)

wrk:
	@command -v wrk >/dev/null || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q wrk; }

## Re-resolve the lock files after changing dependencies in pyproject.toml.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .check
