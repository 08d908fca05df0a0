# One obvious way to run things. Each target sets itself up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.evoprune-installed

.PHONY: demo test docs bench clean

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e ".[dev,docs,dask,attacks]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m evoprune_sklearn demo

test: $(STAMP)
	$(PY) -m pytest -q

# Warnings are errors; every examples/plot_*.py is executed (see docs/conf.py).
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "Open docs/_build/html/index.html"

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/bench_search.py
	PYTHONPATH=. $(PY) benchmarks/bench_quality.py --peer

clean:
	rm -rf docs/_build docs/auto_examples docs/generated docs/gen_modules docs/_generated docs/sg_execution_times.rst evoprune_demo_output
