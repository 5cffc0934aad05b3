# Quick start: `make run` serves the service, `make test` runs the whole suite.
# Each target does its own set-up (a .venv with the project installed).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CDS_HOST    ?= 127.0.0.1
CDS_PORT    ?= 8080
CDS_WORKERS ?= 2
CDS_WORKER_TIMEOUT ?= 30

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/gunicorn --bind $(CDS_HOST):$(CDS_PORT) --workers $(CDS_WORKERS) \
	  --timeout $(CDS_WORKER_TIMEOUT) --access-logfile - 'service.app:create_app()'

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m tests.bench.bench_service

clean:
	rm -rf $(VENV) var *.egg-info
