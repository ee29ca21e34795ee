#!/usr/bin/env bash
# Where the time goes while warmserve streams to 8 clients (CONCURRENCY=N: to N): py-spy samples the API process and
# one worker (native frames included) during a `warmserve bench` run, and each process's CPU
# seconds are read from /proc before and after. Writes benchmarks/results/profile-*.{txt,json}.
#
#   benchmarks/profile_server.sh [WORKERS] [THREADS]      (py-spy: pip install py-spy; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${1:-2}
THREADS=${2:-1}
CONCURRENCY=${CONCURRENCY:-8}
PORT=${PORT:-8951}
OUT=benchmarks/results
TAG="profile-${WORKERS}w${THREADS}t"
[[ $CONCURRENCY == 8 ]] || TAG="$TAG-c$CONCURRENCY"
.venv/bin/warmserve serve --port "$PORT" --workers "$WORKERS" --threads "$THREADS" --log-level warning \
  >"/tmp/$TAG-server.log" 2>&1 &
API=$!
trap 'kill $API 2>/dev/null; wait $API 2>/dev/null || true' EXIT
until curl -s "http://127.0.0.1:$PORT/ready" | grep -q '"status":"ready"'; do sleep 0.2; done
WORKERS_PIDS=$(pgrep -P "$API" -f multiprocessing.spawn | tr '\n' ' ')
WORKER=${WORKERS_PIDS%% *}
cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
BENCH=(.venv/bin/warmserve bench --base-url "http://127.0.0.1:$PORT/v1" --concurrency "$CONCURRENCY" --requests $((CONCURRENCY * 6))
       --max-tokens 64 --prompt-tokens 32 --warmup 1)
# First without the profiler: CPU seconds per generated token of the API process, all workers and
# the load generator (this script's own children), and the wall time.
api0=$(cpu "$API"); w0=$(cpu $WORKERS_PIDS); t0=$(date +%s.%N)
"${BENCH[@]}" --out "$OUT/$TAG-bench.json" >/dev/null
api1=$(cpu "$API"); w1=$(cpu $WORKERS_PIDS); t1=$(date +%s.%N)
read -r _ _ cu cs _ < <(awk '{print $1, $2, $16, $17}' /proc/$$/stat)
# Then sampled by py-spy (which itself costs CPU, so its run is not timed).
.venv/bin/py-spy record --native --idle -r 200 -d 12 -f raw -o "/tmp/$TAG-api.raw" -p "$API" >/dev/null 2>&1 &
SPY1=$!
.venv/bin/py-spy record --native -r 200 -d 12 -f raw -o "/tmp/$TAG-worker.raw" -p "$WORKER" >/dev/null 2>&1 &
SPY2=$!
"${BENCH[@]}" --out "/tmp/$TAG-profiled.json" >/dev/null
wait $SPY1 $SPY2 || true
.venv/bin/python - "$TAG" "$api0" "$api1" "$w0" "$w1" "$t0" "$t1" "$cu" "$cs" "$OUT" <<'PY'
"""Summarise py-spy's raw (collapsed) stacks: share of samples by innermost frame."""
import collections, json, sys
tag, (api0, api1, w0, w1, t0, t1, cu, cs), out = sys.argv[1], map(float, sys.argv[2:10]), sys.argv[10]
bench = json.load(open(f"{out}/{tag}-bench.json"))["levels"][0]
tokens, wall = bench["generated_tokens"], t1 - t0
summary = {
    "tokens_per_s": round(bench["tokens_per_s"], 1), "generated_tokens": tokens, "wall_s": round(wall, 2),
    "cores_used": {"api": round((api1 - api0) / 100 / wall, 3), "workers": round((w1 - w0) / 100 / wall, 3),
                   "load_generator": round((cu + cs) / 100 / wall, 3)},
    "cpu_ms_per_token": {"api": round((api1 - api0) * 10 / tokens, 3), "workers": round((w1 - w0) * 10 / tokens, 3)},
}
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
