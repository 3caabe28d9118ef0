# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest bench clean

# Set-up goes to stderr, so that `make bench > figures.json` holds the JSON alone even on a fresh machine.
$(BIN)/python:
	@echo "creating $(VENV)" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing hip3 and its dev tools into $(VENV)" >&2
	@$(BIN)/python -m pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hip3 demo

lint: $(STAMP)
	$(BIN)/ruff check hip3 tests benchmarks
	$(BIN)/ruff format --check hip3 tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy hip3

pytest: $(STAMP)
	bash scripts/ensure-chromium
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	@$(BIN)/python benchmarks/run_all.py  # @: stdout is the JSON document alone

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
