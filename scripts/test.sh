#!/usr/bin/env bash
# Set up a virtual environment and run the whole test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
bash scripts/fetch-terminology.sh || true
# CI also tests the shared store (and two `cds serve` processes on it) against a real
# PostgreSQL server (skipped elsewhere)
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
   && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
    >/dev/null 2>&1 || echo "note: could not install PostgreSQL; its tests will be skipped" >&2
fi
# CI also runs the browser tests (tests/browser) in Debian's Chromium, driven by Playwright;
# elsewhere they are skipped when Chromium is missing (Playwright's own download is not used)
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
   && ! command -v chromium >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "note: could not install Chromium; browser tests will be skipped" >&2
fi
.venv/bin/ruff check cds tests examples
.venv/bin/mypy cds
if [ "$#" -gt 0 ]; then  # a subset or options of your own: one plain pytest run
  exec .venv/bin/python -m pytest "$@"
fi
# The whole suite on every core (pytest-xdist; a test file runs whole on one worker), but the
# API fuzzing: run by xdist beside other files, schemathesis collected it as one short test
# instead of one per API operation, so it runs after, in a plain pytest run of its own.
.venv/bin/python -m pytest -n auto --dist loadfile --ignore tests/test_fuzz_api.py
.venv/bin/python -m pytest tests/test_fuzz_api.py
