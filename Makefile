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
# The SMART app's SDC renderer (LHC-Forms), installed from npm into service/smart/web/node_modules.
SMART_WEB := service/smart/web

# Every Python package is pinned with its hashes: requirements.lock (the service, as the Docker
# image installs it) and requirements-test.lock (plus the test tools). `make lock` refreshes both
# after a dependency was added to pyproject.toml; `make lock LOCK_FLAGS=--upgrade` moves every pin.
LOCK      := requirements.lock
TEST_LOCK := requirements-test.lock
LOCK_VENV := .venv-lock
LOCK_FLAGS ?=
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --build-deps-for=wheel $(LOCK_FLAGS)

.PHONY: run test bench clean fhir chromium replica-packages demo smart-demo lock

$(STAMP): pyproject.toml $(TEST_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(TEST_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check >/dev/null || { $(BIN)/pip check; echo 'pyproject.toml needs packages $(TEST_LOCK) lacks: run `make lock`' >&2; exit 1; }
	touch $(STAMP)

run: $(STAMP) $(SMART_WEB)/node_modules
	mkdir -p var
	$(BIN)/mecasermin-cds serve --host $(CDS_HOST)

test: $(STAMP) fhir-server/node_modules $(SMART_WEB)/node_modules chromium replica-packages
	$(BIN)/python -m pytest

lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet 'pip-tools>=7.4,<8'
	$(PIP_COMPILE) --output-file=$(LOCK) pyproject.toml
	$(PIP_COMPILE) --extra test --output-file=$(TEST_LOCK) pyproject.toml

# The multi-replica test (tests/integration/test_replicas.py) runs Debian's PostgreSQL and nginx.
# Installed once with apt-get when missing and running as root (CI); otherwise that test skips.
replica-packages:
	@{ ls /usr/lib/postgresql/*/bin/initdb && test -x /usr/sbin/nginx; } >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql nginx-light)
	@{ ls /usr/lib/postgresql/*/bin/initdb && test -x /usr/sbin/nginx; } >/dev/null 2>&1 || \
		echo 'postgresql or nginx is not installed (apt-get needs root): the multi-replica test will be skipped' >&2

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

# LHC-Forms for the DTR page (/smart/dtr), pinned by the lock file; Flask serves its prebuilt dist/lforms
# files (docs/smart-app.md). Nothing is built.
$(SMART_WEB)/node_modules: $(SMART_WEB)/package.json $(SMART_WEB)/package-lock.json
	cd $(SMART_WEB) && $(NPM) ci --no-audit --no-fund --loglevel=error || { rm -rf node_modules; exit 1; }
	test -f $(SMART_WEB)/node_modules/lforms/dist/lforms/webcomponent/main.js || { echo 'npm did not install lforms' >&2; rm -rf $(SMART_WEB)/node_modules; exit 1; }
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
smart-demo: $(STAMP) fhir-server/node_modules $(SMART_WEB)/node_modules
	$(BIN)/python sandbox-config/smart_demo.py --port $${CDS_PORT:-8080} --fhir-port $(FHIR_PORT)

clean:
	rm -rf $(VENV) $(LOCK_VENV) var *.egg-info fhir-server/node_modules $(SMART_WEB)/node_modules
