#!/usr/bin/env bash
# Installs qa, what the browser tests need (Debian chromium), and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing Debian chromium for the browser tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is not installed and this user cannot install it: browser tests will be skipped" >&2
    fi
fi
# axe-core checks the pages' accessibility in the browser tests (they skip it when missing).
if command -v npm >/dev/null 2>&1 && [ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]; then
    npm install --no-save --silent --prefix .cache/npm axe-core@4 >/dev/null \
        || echo "axe-core could not be installed: the accessibility test will be skipped" >&2
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Lint and types first: a finding fails the run as a failing test would.
.venv/bin/ruff check qa tests bench
.venv/bin/mypy qa
exec .venv/bin/python -m pytest "$@"
