# Quick start: `make run` serves the service, `make test` runs the whole suite.
# Each target does its own set-up (a .venv with the project installed).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CDS_HOST    ?= 127.0.0.1

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/mecasermin-cds serve --host $(CDS_HOST)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m tests.bench.bench_service

clean:
	rm -rf $(VENV) var *.egg-info
