#!/usr/bin/env bash
# Installs qa and serves the chat on the bundled corpus, building the index first if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/qa serve --corpus corpus "$@"
