# Scenaria developer commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ONE_CORE := $(if $(shell command -v taskset),taskset -c 0,)

.PHONY: run test lint bench schema

$(INSTALLED): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

## make run: run the example scenario (examples/welcome.json) through the engine in virtual time
run: $(INSTALLED)
	$(BIN)/python -m chalicelib.engine examples/welcome.json examples/welcome.timeline.json

## make test: lint, type-check and run every test
test: lint
	$(BIN)/pytest

## make lint: ruff (lint and format) and mypy on the engine and the scenario model
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make bench: engine speed on one core; prints `name: value unit` and writes bench/results.json
bench: $(INSTALLED)
	$(ONE_CORE) $(BIN)/python -m bench.engine

## make schema: regenerate docs/scenario.schema.json from the pydantic models
schema: $(INSTALLED)
	$(BIN)/python -c "import json; from chalicelib.scenarios import scenario_json_schema as s; print(json.dumps(s(), indent=2, sort_keys=True))" > docs/scenario.schema.json
