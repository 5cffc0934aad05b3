# Quick start: `make run` serves the service, `make test` runs the whole suite.
# Each target does its own set-up (a .venv with the project installed).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CDS_HOST    ?= 127.0.0.1
# The demo FHIR server (fhir-server/): Node >= 22.18, installed from npm into its node_modules.
NPM       ?= npm
FHIR_HOST ?= 127.0.0.1
FHIR_PORT ?= 8090
FHIR_NODE := fhir-server/node_modules/.bin/node

.PHONY: run test bench clean fhir chromium demo smart-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(BIN)/mecasermin-cds serve --host $(CDS_HOST)

test: $(STAMP) fhir-server/node_modules chromium
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium through Playwright (never `playwright install`).
# Installed once with apt-get when missing and running as root (CI); otherwise those tests skip.
chromium:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	@command -v chromium >/dev/null || echo 'chromium is not installed (apt-get needs root): the browser tests will be skipped' >&2

bench: $(STAMP)
	@$(BIN)/python -m tests.bench.bench_service

# npm ci also installs the `node` package (Node 22 for this folder only: the system Node may be 20).
fhir-server/node_modules: fhir-server/package.json fhir-server/package-lock.json
	cd fhir-server && $(NPM) ci --no-audit --no-fund --loglevel=error || { rm -rf node_modules; exit 1; }
	$(FHIR_NODE) --version >/dev/null || { echo 'npm did not install $(FHIR_NODE) (are install scripts disabled?)' >&2; rm -rf fhir-server/node_modules; exit 1; }
	touch $@

# The demo patients in a local FHIR R4 server at http://$(FHIR_HOST):$(FHIR_PORT)/fhir (foreground),
# their dates moved so that the charts' anchor day is today (fhir-server/README.md).
fhir: fhir-server/node_modules
	$(FHIR_NODE) fhir-server/server.mjs --host $(FHIR_HOST) --port $(FHIR_PORT)

# Every demo patient through order-select, order-sign and the screen: starts the FHIR server and the
# service (gunicorn) on free loopback ports, prints the cards, checks every outcome against
# sandbox-config/patients/expected.json (exit 1 on a difference), stops both (sandbox-config/README.md).
demo: $(STAMP) fhir-server/node_modules
	$(BIN)/python sandbox-config/demo.py

# The SMART app launched from the demo EHR (the FHIR server with its SMART authorization server) in
# a browser, on a demo patient; both servers on loopback until Ctrl-C (sandbox-config/smart_demo.py).
smart-demo: $(STAMP) fhir-server/node_modules
	$(BIN)/python sandbox-config/smart_demo.py --port $${CDS_PORT:-8080} --fhir-port $(FHIR_PORT)

clean:
	rm -rf $(VENV) var *.egg-info fhir-server/node_modules
