# MedVoice pipeline: the README's commands. `make help` lists them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_LIB := tests/kafka/target/lib

.PHONY: help system-deps install kafka-jars dev test soak test-unit bench lint format schemas clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

system-deps:  ## install (as root) or name the system packages the tests need
	tools/ensure_system_deps.sh test

$(BIN)/python:
	@$(PY) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 14), "Python 3.11-3.13 needed"' \
	  || { echo "make: set PY to a Python 3.11-3.13 interpreter (PY=python3.12 make ...)" >&2; exit 1; }
	$(PY) -m venv $(VENV) || { echo "make: python3 -m venv failed: install python3-venv" >&2; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip

# Reinstalled whenever pyproject.toml changes, so a pull that adds a dependency just works.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## the venv .venv with everything (runtime, dev, dev stack)

kafka-jars: $(KAFKA_LIB)/.done  ## the Apache Kafka broker jars (Maven, cached in ~/.m2)

$(KAFKA_LIB)/.done: tests/kafka/pom.xml
	tools/ensure_system_deps.sh kafka
	mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies
	touch $@

dev: $(VENV)/.installed  ## the whole stack on this machine (Apache Kafka :9092, S3 :9000, API :8000, one worker)
	tools/ensure_system_deps.sh dev
	@if command -v java >/dev/null 2>&1; then $(MAKE) --no-print-directory kafka-jars \
	  || echo "make dev: the Kafka jars could not be fetched; the embedded broker stands in" >&2; fi
	$(BIN)/python -m tools.dev_stack $(DEV_ARGS)

test: system-deps $(VENV)/.installed kafka-jars  ## the whole suite against real Apache Kafka, S3, workers
	$(BIN)/python -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

soak: system-deps $(VENV)/.installed kafka-jars  ## the SIGKILL series at 32 tasks in flight, 10 runs in a row
	for run in 1 2 3 4 5 6 7 8 9 10; do \
	  echo "== soak run $$run"; \
	  $(BIN)/python -m pytest -s -q -k 32_tasks_in_flight tests/integration/reliability/test_crash.py || exit 1; \
	done

test-unit: $(VENV)/.installed  ## unit tests only (no network)
	$(BIN)/python -m pytest tests/unit

bench: system-deps $(VENV)/.installed kafka-jars  ## the benchmarks; writes bench/results/REPORT.md
	$(BIN)/python -m bench.run

lint: $(VENV)/.installed  ## ruff, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy producer_api processors schemas medvoice_common medvoice_client bench tests

format:  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(VENV)/.installed  ## write the events' JSON Schema (schemas/json/) and docs/asyncapi.yaml
	$(BIN)/python -m schemas.export schemas/json
	$(BIN)/python -m tools.asyncapi docs/asyncapi.yaml

clean:  ## remove the venv and build outputs
	rm -rf $(VENV) tests/kafka/target .pytest_cache .mypy_cache .ruff_cache
