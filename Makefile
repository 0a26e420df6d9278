# Common-ID: the two entry points are `make demo` and `make test`.
# `make demo ARGS="--service-port 9000 --keep"` passes options to `commonid demo`.
# Both are idempotent: they install only what is missing and stay quiet otherwise.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# pcscd + vpcd: the real PC/SC stack; libpcsclite-dev + swig: to build pyscard;
# opensc: an independent JPKI client for interoperability tests; chromium: browser tests;
# fonts-ipafont-gothic: Japanese glyphs for the kiosk page in Chromium (screenshots, layout tests);
# poppler-utils: pdftotext, to check that text copied out of our PDFs is the text written;
# poppler-data: its CMaps for Japanese fonts (UniJIS-UTF16-H), a Recommends that --no-install-recommends skips;
# libpango-1.0-0, libpangoft2-1.0-0, libharfbuzz-subset0: WeasyPrint's layout and font subsetting (the PDFs).
DEB_PACKAGES := pcscd vsmartcard-vpcd libpcsclite-dev swig opensc chromium \
	fonts-ipafont-gothic poppler-utils poppler-data python3-venv python3-dev gcc pkg-config openssl procps postgresql-client \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
LOCAL_POSTGRES_URL := postgresql://postgres@127.0.0.1:5432/test
# axe-core, from npm: the kiosk page's accessibility checks inject it into Chromium.
AXE := tests/kiosk/node_modules/axe-core/axe.min.js

.PHONY: demo test venv deps lint format

demo: venv
	@$(VENV)/bin/commonid demo $(ARGS)

test: venv
	@if [ -z "$$COMMONID_TEST_POSTGRES_URL" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		export COMMONID_TEST_POSTGRES_URL=$(LOCAL_POSTGRES_URL); fi; \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: venv
	@$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

venv: deps $(STAMP) $(AXE)

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1; \
	fi
	@command -v npm >/dev/null || { echo "Installing Debian packages: npm"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null 2>&1; }

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing the commonid package (editable) and test tools into $(VENV)"
	@$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(VENV)/bin/python -c 'import smartcard, didkit, pyhanko, weasyprint, jpki, did, commonid, commonid_kiosk'
	@touch $(STAMP)

$(AXE): tests/kiosk/package-lock.json
	@echo "Installing axe-core (npm) for the kiosk page's accessibility tests"
	@npm ci --prefix tests/kiosk --no-audit --no-fund --loglevel=error >/dev/null
	@touch $(AXE)
