#!/usr/bin/env bash
# Instructions per hook call, counted by valgrind's callgrind: figures that a noisy machine
# does not move, for comparing two versions of the engine (README "Performance").
#   bash scripts/instructions.sh [CHART...]          # default: 100 dvt-likely
#   bash scripts/instructions.sh --http [CHART...]   # per HTTP request, bare and hook servers,
#                                                    # with cache misses (cds.bench.servercost)
# CHART is a number of Observations or an example scenario. Needs valgrind (apt-get install
# valgrind); about half a minute per chart in process, three minutes for --http.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
python=${PYTHON:-.venv/bin/python}
if [ "${1:-}" = "--http" ]; then
  shift
  exec "$python" -m cds.bench.servercost "$@"
fi
count() {  # chart calls stage -> instructions per call
  local work; work=$(mktemp -d)
  PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$work/out" "$python" -m cds.bench.instructions "$1" "$2" "$3" "$work" \
    >/dev/null 2>"$work/err" &
  local pid=$!
  until [ -e "$work/READY" ]; do
    kill -0 "$pid" 2>/dev/null || { tail -5 "$work/err" >&2; exit 1; }
    sleep 0.2
  done
  callgrind_control -i on "$pid" >/dev/null 2>&1
  touch "$work/GO"
  wait "$pid"
  local total; total=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/out")
  rm -rf "$work"
  echo $((total / $2))
}
echo "| chart | hook path, instructions per call | orjson.loads | beyond the parse |"
echo "|---|---:|---:|---:|"
[ "$#" -gt 0 ] || set -- 100 dvt-likely
for chart in "$@"; do
  calls=$([ "$chart" -ge 1000 ] 2>/dev/null && echo 3 || echo 20)
  hook=$(count "$chart" "$calls" hook)
  parse=$(count "$chart" "$calls" parse)
  printf "| %s | %d | %d | %d |\n" "$chart" "$hook" "$parse" $((hook - parse))
done
