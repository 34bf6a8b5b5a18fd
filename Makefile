# Two commands: `make demo` runs the main job, `make test` runs the test suite
# (`make docs` builds the documentation site into site/).
# Each creates a local virtual environment (.venv) on first use and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dlnfusion reproduce zhang2024-fig3c --out out --quick

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

docs: $(STAMP)
	$(BIN)/python -m mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_fig3c.py
	$(BIN)/python benchmarks/bench_fig6b_sweep.py

clean:
	rm -rf $(VENV) out site .pytest_cache
