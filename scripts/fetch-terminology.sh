#!/usr/bin/env bash
# Fetch the SNOMED CT Global Patient Set (npm package hl7.terminology.r4, CC0) that
# tests/test_codes.py checks every SNOMED CT code against. Idempotent; never fails the build:
# without npm the SNOMED check is skipped and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
target=.cache/terminology/package/ValueSet-snomed-intl-gps.json
[ -s "$target" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "note: npm not found; SNOMED CT codes will not be re-checked by the tests" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if (cd "$work" && npm pack --silent hl7.terminology.r4@7.0.1 >/dev/null 2>&1); then
  mkdir -p .cache/terminology
  tar -xzf "$work"/hl7.terminology.r4-7.0.1.tgz -C .cache/terminology \
      package/ValueSet-snomed-intl-gps.json
else
  echo "note: could not fetch hl7.terminology.r4; SNOMED CT check will be skipped" >&2
fi
exit 0
