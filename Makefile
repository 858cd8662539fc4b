# schoolsurge: `make surge` replays the first-day surge against the embedded platform; `make test` runs the quick tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SCENARIO ?= scenarios/first-day-2021.yaml
# Common knobs (empty: the scenario's): TARGET=http://127.0.0.1:8080 SCALE=2e-4 SPEED=72 WORKERS=2 PROFILE=resized
TARGET ?=
SCALE ?=
SPEED ?=
WORKERS ?=
PROFILE ?=
ARGS ?=
KNOBS = $(if $(TARGET),--target $(TARGET)) $(if $(SCALE),--scale $(SCALE)) $(if $(SPEED),--speed $(SPEED)) \
	$(if $(WORKERS),--processes $(WORKERS)) $(if $(PROFILE),--profile $(PROFILE))
JUNIT ?= reports/junit

.PHONY: install surge smoke capacity target report test test-long lint bench docs

# Reinstalls only when pyproject.toml changes, so every target below can depend on it cheaply.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

surge: install
	$(BIN)/schoolsurge run $(SCENARIO) $(KNOBS) $(ARGS)

smoke: install
	$(BIN)/schoolsurge run scenarios/smoke.yaml --fail-on-slo --junit $(JUNIT)/smoke.xml $(KNOBS) $(ARGS)

# Capacity sweep of the embedded platform (undersized-2021 by default; PROFILE=resized for the other).
capacity: install
	$(BIN)/schoolsurge capacity $(SCENARIO) $(KNOBS) $(ARGS)

target: install
	$(BIN)/schoolsurge target $(ARGS)

report: install
	@test -n "$(RUN)" || { echo "usage: make report RUN=reports/<run directory>"; exit 2; }
	$(BIN)/schoolsurge report $(RUN)

# The quick suite (every test not marked long) as 4 pytest processes side by side (TEST_SHARDS=1 for one; ARGS
# go to pytest), then its 15 slowest tests; test-long: the tests marked long, one at a time. tests/shards.py.
test: install
	$(BIN)/python tests/shards.py $(ARGS)

test-long: install
	$(BIN)/python tests/shards.py --long $(ARGS)

bench: install
	$(BIN)/python -m benchmarks.bench_platform
	$(BIN)/python -m benchmarks.bench_report
	$(BIN)/python -m benchmarks.bench_login_form
	$(BIN)/python -m benchmarks.bench_engine

# README's plan tables and console example from the real commands, and docs/screenshots/ (benchmarks/docs.py).
docs: install
	$(BIN)/python -m benchmarks.docs $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
