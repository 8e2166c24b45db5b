#!/usr/bin/env bash
# The performance benchmark (README "Performance"): prints tables, never fails on timing.
#   bash scripts/benchmark.sh            # full run, a few minutes
#   bash scripts/benchmark.sh --quick    # smoke run, noisier
# Installs wrk (the HTTP load tool) with apt-get when it is missing and we are root;
# otherwise says so and skips the HTTP comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet -e '.[test]'
fi
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (apt-get) for the HTTP comparison..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
       -o DPkg::Lock::Timeout=300 wrk) >/dev/null 2>&1 \
      || echo "note: could not install wrk; the HTTP comparison will be skipped" >&2
  else
    echo "note: wrk is not installed and this is not root with apt-get; install wrk" \
         "to run the HTTP comparison" >&2
  fi
fi
exec .venv/bin/python -m cds.bench "$@"
