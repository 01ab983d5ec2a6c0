#!/usr/bin/env bash
# GPU-tier reproduction: set up, run 10 -> 11 -> 12 -> 13 -> 15 on the gpu tier (CIFAR-10 / STL-10 through
# Hugging Face `datasets`, ViT-S-class models, bf16), report, and compare with data/reference/*/gpu.json
# when it exists. Usage: ci/gpu.sh [OUT_DIR] [-p KEY=VALUE ...]   (default runs/reproduce-gpu)
# Needs a CUDA GPU and either internet or a pre-filled Hugging Face cache (HF_HOME / settings.ini cache_dir); without
# either, train on the embedded digits: ci/gpu.sh runs/reproduce-gpu -p dataset=mnist5k  (-p nproc=N: N GPUs, lesson 06a)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/reproduce-gpu}"
shift || true
make setup
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'ci/gpu.sh: no CUDA device visible to torch')"
check=()
ls data/reference/*/gpu.json >/dev/null 2>&1 || check=(--no-check)
[ "$#" -gt 0 ] && check=(--no-check)                 # other parameters than the references': report, do not gate
.venv/bin/python ci/reproduce.py --tier gpu --out "$out" --with-ablation --with-comparison "${check[@]}" "$@"
