# Every target sets up its own virtual environment, so a fresh clone needs only
# python3 (3.10+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

# the demo needs only iqeval's runtime dependencies; the dev tools (pytest,
# Playwright, Dask, mypy) come with the targets that use them
$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(RUNTIME)
	$(BIN)/iqeval compare sample_data/pred sample_data/gt --items \
		--json demo_out/report.json --csv demo_out/items.csv --frames-csv demo_out/frames.csv \
		--html demo_out/report.html --maps demo_out/maps --worst 3 --markdown demo_out/summary.md
	@echo "reports written to demo_out/ (open demo_out/report.html in a browser)"

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
