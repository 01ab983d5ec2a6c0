#!/usr/bin/env bash
# GPU-tier reproduction: set up, run 10 -> 11 -> 12 -> 13 -> 15 on the gpu tier (CIFAR-10 / STL-10 through
# Hugging Face `datasets`, ViT-S-class models, bf16), report, and compare with data/reference/*/gpu.json
# when it exists. Usage: ci/gpu.sh [OUT_DIR] [-p KEY=VALUE ...]   (default runs/reproduce-gpu)
# Needs a CUDA GPU and either internet or a pre-filled Hugging Face cache (HF_HOME / settings.ini cache_dir); without
# either, train on the embedded digits: ci/gpu.sh runs/reproduce-gpu -p dataset=mnist5k  (-p nproc=N: N GPUs, lesson 06a)
#   ci/gpu.sh --dry-run [-p KEY=VALUE ...]   no GPU needed: ci/gpu_dry_run.py builds every gpu-tier configuration on
# this CPU, takes a few steps down a CUDA run's code paths, prints memory, FLOPs and the expected duration (make gpu-dry).
# Before a real run, the preflight (ci/gpu_dry_run.py --preflight: parameters and data) refuses to start when a dataset
# can neither load from the cache nor download here: a lent GPU machine has no network and little time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--dry-run" ]; then
  shift
  make setup
  exec .venv/bin/python ci/gpu_dry_run.py "$@"
fi
out="${1:-runs/reproduce-gpu}"
shift || true
make setup
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'ci/gpu.sh: no CUDA device visible to torch')"
.venv/bin/python ci/gpu_dry_run.py --preflight "$@" \
  || { echo "ci/gpu.sh: not started: fix the problems above first (no device time spent)" >&2; exit 1; }
check=()
ls data/reference/*/gpu.json >/dev/null 2>&1 || check=(--no-check)
[ "$#" -gt 0 ] && check=(--no-check)                 # other parameters than the references': report, do not gate
.venv/bin/python ci/reproduce.py --tier gpu --out "$out" --with-ablation --with-comparison "${check[@]}" "$@"
