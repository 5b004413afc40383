# Every target creates .venv on first use, so each one works alone on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lab bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11+ is needed; run: make PYTHON=python3.11 ..." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mqlab pipeline

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy concurrency_lab mqlab
	$(PY) -m pytest -ra $(PYTEST_ARGS)

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m concurrency_lab bench
	$(PY) benchmarks/loops.py
	$(PY) benchmarks/broker.py
	$(PY) benchmarks/backtest.py
	$(PY) benchmarks/pipeline.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy concurrency_lab mqlab

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
