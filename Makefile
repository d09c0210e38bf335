# Scenaria developer commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PORT ?= 8000
export PORT
ONE_CORE := $(if $(shell command -v taskset),taskset -c 0,)
STAGE ?= tenant-example
OUT ?= build

SCENARIOS ?= examples
SCENARIA_URL ?= http://127.0.0.1:$(PORT)
SCENARIA_API_KEY ?= local-dev-key

.PHONY: run simulate test lint bench schema package package-lint redrive validate apply screenshots

$(INSTALLED): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

## make run: the local stack on http://127.0.0.1:$(PORT) (moto, real handlers), the example loaded
run: $(INSTALLED)
	$(BIN)/python -m chalicelib.local

## make redrive QUEUE=events: move a dead-letter queue's messages back to its queue on the
## running local stack (docs/api.md, "Dead-letter queues"); without QUEUE, show every depth
redrive:
	@if [ -n "$(QUEUE)" ]; then \
		curl -sS -X POST http://127.0.0.1:$(PORT)/admin/dead-letters/$(QUEUE)/redrive \
			-H "X-Api-Key: $${SCENARIA_API_KEY:-local-dev-key}"; \
	else \
		curl -sS http://127.0.0.1:$(PORT)/admin/dead-letters \
			-H "X-Api-Key: $${SCENARIA_API_KEY:-local-dev-key}"; \
	fi; echo

## make simulate: walk a profile through the example scenario in virtual time and print it
simulate: $(INSTALLED)
	$(BIN)/python -m chalicelib.engine examples/welcome.json examples/welcome.timeline.json

## make validate SCENARIOS=dir: every problem of every scenario file, then each one simulated
## against its <name>.timeline.json (docs/cli.md)
validate: $(INSTALLED)
	$(BIN)/python -m chalicelib.cli validate $(SCENARIOS)
	$(BIN)/python -m chalicelib.cli simulate $(SCENARIOS)

## make apply SCENARIOS=dir SCENARIA_URL=url SCENARIA_API_KEY=key: show the diff, then create,
## update (a new version when active) and activate the folder's scenarios on that stack
apply: $(INSTALLED)
	$(BIN)/python -m chalicelib.cli diff $(SCENARIOS) --url $(SCENARIA_URL) --key $(SCENARIA_API_KEY)
	$(BIN)/python -m chalicelib.cli apply $(SCENARIOS) --url $(SCENARIA_URL) --key $(SCENARIA_API_KEY) --activate

## make test: lint, type-check, package and cfn-lint the example tenant's stack, run every test
## (the browser tests in tests/browser when Debian's chromium is installed; skipped, loudly, if not)
test: lint package-lint
	$(BIN)/pytest

## make screenshots: the console on the example in headless Chromium, written to docs/console.png
screenshots: $(INSTALLED)
	$(BIN)/python -m tests.browser.screenshots

## make lint: ruff (lint and format) and mypy on the engine and the scenario model
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make bench: engine speed on one core, then the runtime's requests and all-in cost per
## journey (Lambda, DynamoDB, SQS, API Gateway, beside Step Functions), campaign scaling
## and wake-up lateness, then the e-mail worker's rate and requests per message, then
## segment membership's requests per profile change and per 1,000 profiles of its daily
## run, then commerce signals' requests and time per watcher of a price change and per
## commerce event, then the local stack's memory over a virtual year of 10,000 journeys and 30
## idle days (fails over 1 GB, or when idle days grow it); prints `name: value unit` lines and
## writes bench/results.json
bench: $(INSTALLED)
	$(ONE_CORE) $(BIN)/python -m bench.engine
	$(BIN)/python -m bench.runtime
	$(BIN)/python -m bench.channels
	$(BIN)/python -m bench.segments
	$(BIN)/python -m bench.commerce
	$(BIN)/python -m bench.soak

## make schema: regenerate docs/scenario.schema.json from the pydantic models
schema: $(INSTALLED)
	$(BIN)/python -c "import json; from chalicelib.scenarios import scenario_json_schema as s; print(json.dumps(s(), indent=2, sort_keys=True))" > docs/scenario.schema.json

## make package STAGE=tenant-example OUT=build: a tenant's stack (docs/deploy.md) as CloudFormation
## (SAM) in $(OUT)/sam.json, code and dependency layer zips beside it; no AWS account needed
package: $(INSTALLED)
	$(BIN)/python -m infra.template --stage $(STAGE) --output $(OUT)/merge-template.json
	SCENARIA_STAGE=$(STAGE) AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
		$(BIN)/chalice package --stage $(STAGE) --pkg-format cloudformation \
		--merge-template $(OUT)/merge-template.json $(OUT)

## make package-lint: make package, then cfn-lint the template
package-lint: package
	$(BIN)/cfn-lint $(OUT)/sam.json
