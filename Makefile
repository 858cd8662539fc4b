# schoolsurge: `make surge` replays the first-day surge against the embedded platform; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SCENARIO ?= scenarios/first-day-2021.yaml
ARGS ?=

.PHONY: install surge smoke capacity target report test lint bench

# Reinstalls only when pyproject.toml changes, so every target below can depend on it cheaply.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

surge: install
	$(BIN)/schoolsurge run $(SCENARIO) $(ARGS)

smoke: install
	$(BIN)/schoolsurge run scenarios/smoke.yaml --fail-on-slo $(ARGS)

# Capacity sweep of the embedded platform (undersized-2021 by default; ARGS="--profile resized" for the other).
capacity: install
	$(BIN)/schoolsurge capacity $(SCENARIO) $(ARGS)

target: install
	$(BIN)/schoolsurge target $(ARGS)

report: install
	@test -n "$(RUN)" || { echo "usage: make report RUN=reports/<run directory>"; exit 2; }
	$(BIN)/schoolsurge report $(RUN)

test: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m benchmarks.bench_platform
	$(BIN)/python -m benchmarks.bench_report

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
