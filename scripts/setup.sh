#!/usr/bin/env bash
# Creates .venv and installs qa with its dependencies; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.qa-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install --quiet --upgrade pip
    # The CPU build of torch first, so sentence-transformers does not pull a CUDA build.
    .venv/bin/pip install --quiet "torch==2.13.0"
    # The ray extra too: the distributed-build tests run on a real local Ray cluster.
    .venv/bin/pip install --quiet -e ".[dev,ray]"
    touch "$stamp"
fi
