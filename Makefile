# jepa_nb — every command sets up what it needs first (a .venv with CI's torch pins).
#   make main    set up, then run the main job (cpu tier) on the embedded mnist5k data
#   make test    set up, then run the whole test suite (what .ci/run calls)
#   make browser install Chromium + chromedriver for tests/test_browser.py (as root, via apt; part of setup)
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CI's pins (torch/torchvision, see ci/constraints.txt); `make setup CONSTRAINTS=` to use your own torch
CONSTRAINTS ?= ci/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: setup browser main test export clean-nbs check-sync nbtest pytest smoke readme render bench help

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) browser

# Chromium for tests/test_browser.py (JupyterLab in a real browser). Installed only as root with apt-get and
# only when missing; if that cannot happen, setup goes on and the browser test skips itself.
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium + chromium-driver with apt-get (for tests/test_browser.py, about a minute)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	     chromium chromium-driver) >/dev/null 2>&1 \
	  || echo "notice: apt-get could not install chromium; tests/test_browser.py will be skipped"; \
	else \
	  echo "notice: no $(CHROMIUM) (needs root + apt-get to install); tests/test_browser.py will be skipped"; \
	fi

# --- the main job -------------------------------------------------------------------------
main: setup
	$(BIN)/python ci/reproduce.py --tier cpu

# --- tests ------------------------------------------------------------------------------
# Lessons and tests run two at a time, one thread each: on CI's 2 cores the course's small models gain little from a
# second thread, and most of a test's time is single-threaded (imports, kernels, subprocesses).
test: setup
	$(BIN)/python ci/check_sync.py
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2 --timing --skip-file-re '^(_|\.|1[0-9]_)'
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -x -n 2 --durations=12 tests

# --- development helpers ----------------------------------------------------------------
export: setup
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean
	$(BIN)/python ci/make_readme.py

readme: setup
	$(BIN)/python ci/make_readme.py

render: setup          # execute the lessons and keep their figures (after editing a lesson)
	$(BIN)/python ci/render_lessons.py

bench: setup
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/jepa_score.py
