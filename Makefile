# Warren: build the environment, check the services, run the tests and the linters.
#
#   make venv       .venv from uv.lock (uv itself lives in .tools/venv)
#   make services   start the local RabbitMQ and PostgreSQL if stopped, enable the plugins,
#                   then check they answer (`warren doctor --fix`; SERVICES_WAIT_S=60 waits)
#   make run        venv + services, then `warren up --demo 20` (Ctrl-C stops it)
#   make test       venv + services, then pytest (PYTEST_ARGS="-k smoke" to narrow)
#   make lint       ruff check, ruff format --check, mypy
#   make fmt        sort imports and format

PYTHON ?= python3
UV_SPEC ?= uv>=0.13
PYTEST_ARGS ?=
# Seconds `make services` keeps trying for services started elsewhere (CI waits, a person not).
SERVICES_WAIT_S ?= 0

TOOLS := .tools/venv
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# uv sync runs again only when the lock, the project or this file changes, or .venv is gone.
SYNCED := $(VENV)/.warren-synced

.DEFAULT_GOAL := venv
.PHONY: venv services run test lint fmt

venv: $(SYNCED)

# uv gets its own venv: `uv sync` would remove a uv installed into .venv.
$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Warren needs Python 3.11 or newer: make PYTHON=python3.11 ..." or 0)'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check '$(UV_SPEC)'

# Bytecode compiled at install, as in the image (compose/Dockerfile): with PYTHONDONTWRITEBYTECODE
# set and nothing compiled, every process compiles each module it imports, every start, and
# that compiling raises a worker's peak RSS by about 6 MiB (docs/performance.md).
$(SYNCED): $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen --extra dev --compile-bytecode --python $(PYTHON)
	@touch $@

services: venv
	$(BIN)/warren doctor --fix --wait $(SERVICES_WAIT_S)

# The gateway, every worker and their relays on this machine (SQLite under var/), then a demo.
run: venv services
	$(BIN)/warren up --demo 20

test: venv services
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .
