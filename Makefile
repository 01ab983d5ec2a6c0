# jepa_nb — every command sets up what it needs first (a .venv with CI's torch pins). `make help` lists the targets:
# each target's `## ...` comment is its line there.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CI's pins (torch/torchvision, see ci/constraints.txt); `make setup CONSTRAINTS=` to use your own torch
CONSTRAINTS ?= ci/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: help setup browser main test export readme results render bench gpu-dry

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 16

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) ## create .venv (Python >= 3.10 with venv; ~6.5 GB with PyPI's torch) and install jepa_nb editable

# Chromium for tests/test_browser.py (JupyterLab in a real browser). Installed only as root with apt-get and
# only when missing; if that cannot happen, the target goes on and the browser test skips itself.
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
browser: ## Chromium + chromedriver for tests/test_browser.py (root + apt-get; only make test needs them)
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
main: setup ## the main job: the cpu tier on the embedded mnist5k digits, checked against data/reference/
	$(BIN)/python ci/reproduce.py --tier cpu

# --- tests ------------------------------------------------------------------------------
# Lessons and tests run two at a time, one thread each: on CI's 2 cores the course's small models gain little from a
# second thread, and most of a test's time is single-threaded (imports, kernels, subprocesses). Both start their
# longest items first (ci/test_lessons.py; tests/conftest.py with --dist worksteal) so the two workers end together.
test: setup browser ## the whole test suite (what CI's .ci/run calls)
	$(BIN)/python ci/check_sync.py
	OMP_NUM_THREADS=1 $(BIN)/python ci/test_lessons.py --jobs 2
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -x -n 2 --dist worksteal --durations=12 tests

# --- development helpers ----------------------------------------------------------------
export: setup ## notebooks -> jepa_nb/, clean the notebooks, regenerate README.md
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean
	$(BIN)/python ci/make_readme.py

readme: setup ## README.md from nbs/index.ipynb
	$(BIN)/python ci/make_readme.py

results: setup ## data/reference/RESULTS.md from the cpu references
	$(BIN)/python ci/make_results.py

render: setup ## execute the lessons and keep their figures (after editing a lesson)
	$(BIN)/python ci/render_lessons.py

# The gpu tier on this CPU before a lent GPU runs it (≤ 2 min): parameters, offline data, every configuration built at
# gpu shapes with memory / FLOPs / expected time, 3 CPU steps down the CUDA code paths, DDP in 2 gloo processes.
# Today it fails on cifar10 (no network there); what such a machine can run: make gpu-dry ARGS="-p dataset=shapes"
ARGS ?=
gpu-dry: setup ## the gpu tier dry-run on CPU (ci/gpu.sh --dry-run); ARGS="-p dataset=shapes" as ci/gpu.sh takes
	OMP_NUM_THREADS=1 $(BIN)/python ci/gpu_dry_run.py $(ARGS)

bench: setup ## the benchmarks (bench/RESULTS.md records their tables)
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/jepa_score.py
