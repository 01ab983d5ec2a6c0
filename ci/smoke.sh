#!/usr/bin/env bash
# CPU smoke reproduction (what the test suite's gate runs): every experiment on the smoke tier,
# checked against data/reference/*/smoke.json.   Usage: ci/smoke.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
make setup
.venv/bin/python ci/reproduce.py --tier smoke --out "${1:-runs/reproduce-smoke}"
