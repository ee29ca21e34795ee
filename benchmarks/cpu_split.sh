#!/usr/bin/env bash
# On a CPU: one worker using every core, or one single-thread worker per core? Both splits of
# the GGUF backend, alternated ROUNDS times so machine noise falls on both, at concurrency
# 1, 4 and 8 (benchmarks/concurrency_throughput.py). Results: benchmarks/results/cpu-split-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
for round in $(seq 1 "$ROUNDS"); do
  for split in "1 2" "2 1"; do
    set -- $split
    .venv/bin/python benchmarks/concurrency_throughput.py --backend llama_cpp --workers "$1" --threads "$2" \
      --concurrency 1,4,8 --requests 8 --max-tokens 64 --label "cpu-split-${1}w${2}t-round$round"
  done
done
.venv/bin/python - <<'PY'
import glob, json, statistics
rows = {}
for path in sorted(glob.glob("benchmarks/results/concurrency-cpu-split-*.json")):
    split = path.split("cpu-split-")[1].split("-round")[0]
    for level in json.load(open(path))["levels"]:
        rows.setdefault((split, level["concurrency"]), []).append(level["tokens_per_s"])
for (split, concurrency), values in sorted(rows.items()):
    print(f"{split} concurrency {concurrency}: median {statistics.median(values):.1f} tokens/s of {values}")
PY
