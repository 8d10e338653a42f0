# The two commands of the README's Quick start. Both do their own set-up on a fresh machine.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= $(CURDIR)/.demo

.PHONY: demo test setup lint docker unit e2e bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh "$(DEMO_DIR)"

lint: setup
	$(VENV)/bin/ruff check reconciler tests bench
	$(VENV)/bin/ruff format --check reconciler tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint docker
	$(VENV)/bin/pytest -q -p no:cacheprovider

# Docker tests run wherever an engine can be had; in CI (CI set) a missing engine is an error.
docker:
	@bash scripts/setup-docker.sh || { [ -z "$$CI" ] || exit 1; echo "no Docker engine: Docker tests will be skipped" >&2; }

unit: setup
	$(VENV)/bin/pytest -q tests/unit

e2e: setup
	$(VENV)/bin/pytest -q tests/e2e

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache
