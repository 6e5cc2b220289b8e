# The two commands of the README. Both create .venv when missing and install
# the package (editable) with what it needs; the stamp file makes re-runs fast.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kikuchi-installed

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# After installing, the numba kernels are compiled once on all cores and cached
# (python -m kikuchi._warmup), so a first run does not wait for compilation.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m kikuchi._warmup
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kikuchi demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"

clean:
	rm -rf $(VENV) build dist .pytest_cache demo-output
