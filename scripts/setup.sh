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
    # The CPU build of torch first, so sentence-transformers does not pull a CUDA build.
    .venv/bin/pip install --quiet -c constraints.txt "torch==2.13.0"
    # constraints.txt pins every dependency to the versions the tests last passed with.
    .venv/bin/pip install --quiet -c constraints.txt -e ".[dev]"
    touch "$stamp"
fi
