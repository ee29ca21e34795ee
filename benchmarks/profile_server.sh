#!/usr/bin/env bash
# Where the time goes while warmserve streams to 8 clients: py-spy samples the API process and
# one worker (native frames included) during a `warmserve bench` run, and each process's CPU
# seconds are read from /proc before and after. Writes benchmarks/results/profile-*.{txt,json}.
#
#   benchmarks/profile_server.sh [WORKERS] [THREADS]      (py-spy: pip install py-spy; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${1:-2}
THREADS=${2:-1}
PORT=${PORT:-8951}
OUT=benchmarks/results
TAG="profile-${WORKERS}w${THREADS}t"
.venv/bin/warmserve serve --port "$PORT" --workers "$WORKERS" --threads "$THREADS" --log-level warning \
  >"/tmp/$TAG-server.log" 2>&1 &
API=$!
trap 'kill $API 2>/dev/null; wait $API 2>/dev/null || true' EXIT
until curl -s "http://127.0.0.1:$PORT/ready" | grep -q '"status":"ready"'; do sleep 0.2; done
WORKER=$(pgrep -P "$API" -f multiprocessing.spawn | head -1)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
BENCH=(.venv/bin/warmserve bench --base-url "http://127.0.0.1:$PORT/v1" --concurrency 8 --requests 48
       --max-tokens 64 --prompt-tokens 32 --warmup 1 --out "$OUT/$TAG-bench.json")
api0=$(cpu "$API"); w0=$(cpu "$WORKER")
.venv/bin/py-spy record --native --idle -r 200 -d 12 -f raw -o "/tmp/$TAG-api.raw" -p "$API" >/dev/null 2>&1 &
SPY1=$!
.venv/bin/py-spy record --native -r 200 -d 12 -f raw -o "/tmp/$TAG-worker.raw" -p "$WORKER" >/dev/null 2>&1 &
SPY2=$!
"${BENCH[@]}" >/dev/null
wait $SPY1 $SPY2 || true
api1=$(cpu "$API"); w1=$(cpu "$WORKER")
.venv/bin/python - "$TAG" "$api0" "$api1" "$w0" "$w1" "$OUT" <<'PY'
"""Summarise py-spy's raw (collapsed) stacks: share of samples by innermost warmserve/library frame."""
import collections, json, sys
tag, api0, api1, w0, w1, out = sys.argv[1], *map(float, sys.argv[2:6]), sys.argv[6]
bench = json.load(open(f"{out}/{tag}-bench.json"))["levels"][0]
tokens = bench["generated_tokens"]
summary = {"tokens_per_s": bench["tokens_per_s"], "generated_tokens": tokens,
           "api_cpu_ms_per_token": (api1 - api0) * 10 / tokens, "worker_cpu_ms_per_token": (w1 - w0) * 10 / tokens}
lines = [f"{tag}: {json.dumps(summary)}"]
for who in ("api", "worker"):
    counts = collections.Counter()
    total = 0
    for line in open(f"/tmp/{tag}-{who}.raw"):
        stack, _, n = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        total += int(n)
        # the innermost frame that names a function, with its file
        counts[frames[-1].split(" (")[0][:90]] += int(n)
    lines.append(f"\n{who}: {total} samples, top innermost frames")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(18)]
text = "\n".join(lines)
print(text)
open(f"{out}/{tag}.txt", "w").write(text + "\n")
PY
