# MedVoice pipeline: the README's commands. `make help` lists them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_LIB := tests/kafka/target/lib

.PHONY: help install kafka-jars dev test test-unit test-integration bench lint format schemas clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python  ## the venv .venv with everything (runtime and dev)
	$(BIN)/pip install --quiet -e '.[dev]'

$(BIN)/faust: | $(BIN)/python
	$(MAKE) install

kafka-jars: $(KAFKA_LIB)/.done  ## the Apache Kafka broker jars for the tests (Maven, cached in ~/.m2)

$(KAFKA_LIB)/.done: tests/kafka/pom.xml
	mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies
	touch $@

dev: $(BIN)/faust  ## the whole stack on this machine (embedded broker, S3, API :8000, one worker)
	$(BIN)/python -m tools.dev_stack

test: $(BIN)/faust kafka-jars  ## the whole suite against real Apache Kafka, S3 endpoint, workers
	$(BIN)/python -m pytest

test-unit: $(BIN)/faust  ## unit tests only (no network)
	$(BIN)/python -m pytest tests/unit

bench: $(BIN)/faust kafka-jars  ## the benchmarks; writes bench/results/REPORT.md
	$(BIN)/python -m bench.run

lint:  ## ruff, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy producer_api processors schemas medvoice_common

format:  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas:  ## write the events' JSON Schema to schemas/json/
	$(BIN)/python -m schemas.export schemas/json

clean:  ## remove the venv and build outputs
	rm -rf $(VENV) tests/kafka/target .pytest_cache .mypy_cache .ruff_cache
