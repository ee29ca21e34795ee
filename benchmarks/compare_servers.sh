#!/usr/bin/env bash
# Aggregate tokens/s at concurrency 1, 4, 8 for warmserve (both CPU splits) and, when given,
# llama.cpp's llama-server and llama-cpp-python's server, on the same model and machine,
# one after the other in one run. Results: benchmarks/results/concurrency-*.json.
#
#   benchmarks/compare_servers.sh [LLAMA_SERVER_BINARY] [PYTHON_WITH_llama_cpp.server]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
BENCH="$PY benchmarks/concurrency_throughput.py --concurrency 1,4,8 --requests 8 --max-tokens 64"
MODEL_FILE=$($PY -c 'from warmserve.config import embedded_model_path; print(embedded_model_path())')
PORT=${PORT:-8799}

wait_up() {  # wait until an OpenAI server answers /v1/models
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && return 0
    sleep 0.2
  done
  return 1
}

$BENCH --backend llama_cpp --workers 1 --threads 2 --label warmserve-1w2t
$BENCH --backend llama_cpp --workers 2 --threads 1 --label warmserve-2w1t
$BENCH --backend llama_cpp --workers 1 --threads 2 --flash-attn on --label warmserve-1w2t-flash-attn

if [[ -n "${1:-}" ]]; then
  "$1" -m "$MODEL_FILE" --host 127.0.0.1 --port $PORT -t 2 --parallel 4 -c 16384 >/tmp/llama-server.log 2>&1 &
  pid=$!
  wait_up && $BENCH --base-url "http://127.0.0.1:$PORT" --model any --label llama-server-parallel4 || true
  kill "$pid"; wait "$pid" || true
fi

if [[ -n "${2:-}" ]]; then
  "$2" -m llama_cpp.server --model "$MODEL_FILE" --host 127.0.0.1 --port $PORT --n_threads 2 --n_ctx 4096 \
    >/tmp/llama-cpp-python-server.log 2>&1 &
  pid=$!
  wait_up && $BENCH --base-url "http://127.0.0.1:$PORT" --model "$MODEL_FILE" --label llama-cpp-python-server || true
  kill "$pid"; wait "$pid" || true
fi
