# yQuant: `make run` starts the whole system, `make test` runs lint, types and tests.
# Both create .venv when it is missing and install the project into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench deploy-check arm64-check clean browser-deps lock-dev

$(STAMP): pyproject.toml requirements-dev.lock
	@scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/yquant up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy scripts
	$(BIN)/mypy tests

browser-deps:
	@scripts/ensure-chromium.sh
	@scripts/ensure-docker.sh
	@scripts/ensure-prometheus.sh
	@scripts/ensure-caddy.sh

pytest: $(STAMP) browser-deps
	$(BIN)/pytest

test: deploy-check lint typecheck pytest

deploy-check: $(STAMP)
	@scripts/ensure-caddy.sh
	@scripts/ensure-prometheus.sh
	$(BIN)/python scripts/deploy_check.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Every service starts and answers its health checks on arm64 (qemu-user emulation, no Docker);
# root, several minutes; not part of `make test`. See docs/operations.md.
arm64-check: $(STAMP)
	PYTHON=$(BIN)/python scripts/arm64-check.sh

clean:
	rm -rf $(VENV) .yquant .mypy_cache .ruff_cache

# Re-pin the development environment after a dependency change (then commit requirements-dev.lock).
lock-dev: $(STAMP)
	$(BIN)/pip install -q -e '.[dev]'
	@{ sed -n '1,4p' requirements-dev.lock; $(BIN)/pip freeze --exclude-editable | grep -v '^-e'; } > requirements-dev.lock.new
	@mv requirements-dev.lock.new requirements-dev.lock
