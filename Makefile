# Every target creates .venv on first use, so each one works alone on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

PORT   ?= 8888
BOOK   := _build/html
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: cluster-up cluster-down cluster-status demo test test-fast lab git-filter strip bench lint clean book book-check serve-book

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

# A 3-node RabbitMQ cluster on 127.0.0.1 (AMQP 5701-5703), from Debian's rabbitmq-server; needs
# root (sudo make cluster-up) because the nodes run as the rabbitmq user. See docs/setup.md.
cluster-up: $(STAMP)
	$(PY) -m mqlab cluster up

cluster-down: $(STAMP)
	$(PY) -m mqlab cluster down

cluster-status: $(STAMP)
	$(PY) -m mqlab cluster status

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy concurrency_lab mqlab chapters
	$(PY) -m pytest -ra --durations=20 $(PYTEST_ARGS)

# The unit tests alone, for the edit-test loop: no chapter notebooks, nothing marked slow
# (whole pipelines, processes, fuzz and load), no RabbitMQ (its cases carry "rabbitmq" in
# their ids and marks). make test runs everything, in one process.
# Two worker processes (pytest-xdist): about half the time here goes in waiting (timeouts the
# exercise checks and the broker tests wait out), which the other worker fills. Each worker has
# its own embedded broker. TEST_WORKERS=0 runs in one process (e.g. for pdb).
TEST_WORKERS ?= 2
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not notebook and not slow and not rabbitmq" -k "not rabbitmq" \
	  -n $(TEST_WORKERS) --dist worksteal --durations=10 $(PYTEST_ARGS)

# The server's root is the repository, so chapter links to docs/ and to the reference
# solutions open; the browser starts on chapter 00. LAB_QUICK=1 make lab for the quick setting;
# LAB_ARGS passes more options to JupyterLab (e.g. LAB_ARGS=--no-browser). No news or update
# checks: they pop up asking to fetch from the internet.
# Jupyter refuses to run as root unless told; containers and CI machines often are root.
lab: $(STAMP) git-filter
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --port $(PORT) --ServerApp.root_dir=. \
	  --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb \
	  --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Keep the outputs JupyterLab saves out of git: nbstripout as this clone's clean filter. The
# files on disk keep their outputs; what git stores, diffs and reports as changed has none.
# --keep-id leaves the committed cell ids alone. Local to this clone (.git), never committed.
NBSTRIPOUT := "$(CURDIR)/$(VENV)/bin/nbstripout"
git-filter: $(STAMP)
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean '$(NBSTRIPOUT) --keep-id' && \
	  git config filter.nbstripout.smudge cat && \
	  git config diff.ipynb.textconv '$(NBSTRIPOUT) -t --keep-id' && \
	  attrs=$$(git rev-parse --git-path info/attributes) && mkdir -p "$$(dirname "$$attrs")" && \
	  { grep -qs 'filter=nbstripout' "$$attrs" || \
	    echo '*.ipynb filter=nbstripout diff=ipynb' >> "$$attrs"; } && \
	  echo "git-filter: nbstripout keeps notebook outputs out of git in this clone"; \
	fi

# Clear the outputs from the chapter files themselves (make test checks they have none).
strip: $(STAMP)
	$(VENV)/bin/nbstripout --keep-id notebooks/*.ipynb

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[dev,docs]'
	touch $(DOCS_STAMP)

# The HTML book: chapters executed in the quick setting (cached in _build/.jupyter_cache, so a
# rebuild re-runs only the chapters whose code changed), docs/*.md and the README.
book: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html -c docs/book . $(BOOK)
	@echo "book: $(BOOK)/index.html  (make serve-book PORT=$(PORT))"

# Every page in headless chromium (Debian's; never a downloaded browser): no console error,
# no failed request, no broken internal link, a figure on every chapter, screenshots.
book-check: $(DOCS_STAMP)
	$(PY) docs/book/check.py $(BOOK) --screenshots _build/screenshots

serve-book:
	@test -f $(BOOK)/index.html || { echo "no book yet: run make book" >&2; exit 1; }
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory $(BOOK)

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m concurrency_lab bench
	$(PY) benchmarks/loops.py
	$(PY) benchmarks/broker.py
	$(PY) benchmarks/backtest.py
	$(PY) benchmarks/pipeline.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy concurrency_lab mqlab chapters

clean:
	rm -rf $(VENV) .pytest_cache build _build *.egg-info
