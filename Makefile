# Two commands for a fresh machine: `make app` and `make test` (see README.md).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 8501
SHARED_DATA := $(abspath ../shared/data)

.PHONY: install chromium app dev test lint bench

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's chromium; never a downloaded browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# Server settings (no file watcher, no usage statistics, localhost) live in .streamlit/config.toml.
app: install
	@echo "Mixture Lab: open http://$(HOST):$(PORT) in your browser"
	$(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT)

# For editing the code: pages reload when a file changes.
dev: install
	$(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
	  --server.fileWatcherType auto --server.runOnSave true

test: install chromium
	MOA_DATA_DIR=$${MOA_DATA_DIR:-$(SHARED_DATA)} $(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: install
	MOA_DATA_DIR=$${MOA_DATA_DIR:-$(SHARED_DATA)} $(PY) -m benchmarks.run
