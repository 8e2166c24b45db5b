#!/usr/bin/env bash
# Set up a virtual environment and run the whole test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
bash scripts/fetch-terminology.sh || true
.venv/bin/ruff check cds tests examples
.venv/bin/python -m pytest "$@"
