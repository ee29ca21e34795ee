#!/usr/bin/env bash
# Core lending while another process keeps one core busy: the default (lending guarded by the
# machine's idle cores) against lending switched off and, given a checkout with the guard removed,
# lending unguarded. The busy process is a bounded Python loop started (and stopped) here by pid.
#
#   [LLAMA_SERVER=/path/to/llama-server] benchmarks/lending_under_load.sh [UNGUARDED_SERVER_PYTHONPATH]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
.venv/bin/python -c "import time; end = time.time() + 3600
while time.time() < end: pass" &
HOG=$!
trap 'kill $HOG 2>/dev/null || true' EXIT
VARIANTS=(--variant "no-lending:--no-share-idle-cores")
if [ -n "${1:-}" ]; then VARIANTS+=(--variant "unguarded:PYTHONPATH=$1"); fi
if [ -n "${LLAMA_SERVER:-}" ]; then VARIANTS+=(--llama-server "$LLAMA_SERVER" --parallel 8); fi
# Each round's numbers also go to the .log (interleaved.py --from-log writes the report again from it).
.venv/bin/python benchmarks/interleaved.py --rounds "$ROUNDS" --max-seconds 60 "${VARIANTS[@]}" \
  --out benchmarks/results/lending-under-load.json 2> >(tee benchmarks/results/lending-under-load.log >&2)
