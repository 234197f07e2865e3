# Two commands for a fresh machine: `make app` and `make test` (see README.md).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 8501
ACCESS_CODE ?=
SHARED_DATA := $(abspath ../shared/data)

.PHONY: install chromium app dev test lint bench bench-gpu lock gallery

# constraints.txt pins every package to the version the tests passed with (`make lock`).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's chromium; never a downloaded browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# Server settings (no file watcher, no usage statistics, localhost) live in .streamlit/config.toml.
# ACCESS_CODE=… puts every page behind that code (MOA_ACCESS_CODE); the code is never echoed.
app: install
	@if [ "$(HOST)" != "127.0.0.1" ] && [ "$(HOST)" != "localhost" ] \
	  && [ -z "$(ACCESS_CODE)$${MOA_ACCESS_CODE}" ]; then \
	  echo "WARNING: serving on $(HOST) with no access code: anyone on the network can use the lab." >&2; \
	  echo "         Set one with: make app HOST=$(HOST) ACCESS_CODE=<a code for your class>" >&2; fi
	@echo "Mixture Lab: open http://$(HOST):$(PORT) in your browser"
	@$(if $(ACCESS_CODE),MOA_ACCESS_CODE='$(ACCESS_CODE)') \
	  $(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT)

# For editing the code: pages reload when a file changes.
dev: install
	$(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
	  --server.fileWatcherType auto --server.runOnSave true

# Whole test modules run in parallel, one worker per CPU (pytest-xdist; TEST_WORKERS=0: one process).
TEST_WORKERS ?= auto
test: install chromium
	MOA_DATA_DIR=$${MOA_DATA_DIR:-$(SHARED_DATA)} $(PY) -m pytest -q -p no:cacheprovider \
	  -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Refresh constraints.txt: upgrade within pyproject.toml's ranges, then record what is installed.
# Run `make test` afterwards and commit both files together.
lock:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --upgrade -e '.[dev]'
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable \
	  | grep -v -E '^(pip|setuptools|wheel)=='; } > constraints.tmp && mv constraints.tmp constraints.txt
	touch $(STAMP)

bench: install
	MOA_DATA_DIR=$${MOA_DATA_DIR:-$(SHARED_DATA)} $(PY) -m benchmarks.run

# The GPU task's cases in one run (≤ 8 minutes on one H100/H200); SMOKE=1: tiny, on any CPU.
bench-gpu: install
	MOA_DATA_DIR=$${MOA_DATA_DIR:-$(SHARED_DATA)} $(PY) -m benchmarks.gpu $(if $(SMOKE),--smoke)

# Retrain the bundled runs (assets/checkpoints, assets/gallery/ thumbnails): seeded, on the CPU.
gallery: install
	$(PY) -m moa_core.gallery_build
