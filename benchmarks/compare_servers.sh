#!/usr/bin/env bash
# warmserve against llama.cpp's llama-server and llama-cpp-python's server: the same model
# (the embedded SmolLM2-135M-Instruct Q4_1), the same machine and threads, one after the other
# in one run, measured by `warmserve bench` (streaming completions, ~128-token prompts, 64
# tokens each). JSON + PNG per server in benchmarks/results/compare-*.
#
#   benchmarks/compare_servers.sh [LLAMA_SERVER_BINARY] [PYTHON_WITH_llama_cpp.server]
#
# llama-server: build it from the llama.cpp vendored in llama-cpp-python's sdist
# (cmake -DLLAMA_BUILD_SERVER=ON, target llama-server); llama-cpp-python's server:
# pip install 'llama-cpp-python[server]' in a separate virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=benchmarks/results
MODEL_FILE=$($PY -c 'from warmserve.config import embedded_model_path; print(embedded_model_path())')
PORT=${PORT:-8799}
BENCH=(.venv/bin/warmserve bench --base-url "http://127.0.0.1:$PORT/v1" --concurrency 1,2,4,8
       --requests "${REQUESTS:-8}" --max-tokens 64 --prompt-tokens 128 --stream --max-seconds 120)

wait_up() {
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && return 0
    sleep 0.2
  done
  return 1
}

measure() {  # name, then the server command
  local name=$1; shift
  "$@" >"/tmp/compare-$name.log" 2>&1 &
  local pid=$!
  if wait_up; then
    if [[ $name == warmserve* ]]; then  # /v1/models answers before the workers hold the model
      until curl -s "http://127.0.0.1:$PORT/ready" | grep -q '"status":"ready"'; do sleep 0.2; done
    fi
    "${BENCH[@]}" --out "$OUT/compare-$name.json" --plot "$OUT/compare-$name.png" || true
  fi
  kill "$pid"; wait "$pid" || true
}

measure warmserve .venv/bin/warmserve serve --port "$PORT" --workers 1 --threads 2
measure warmserve-2w1t .venv/bin/warmserve serve --port "$PORT" --workers 2 --threads 1
if [[ -n "${1:-}" ]]; then
  measure llama-server "$1" -m "$MODEL_FILE" --host 127.0.0.1 --port "$PORT" -t 2 --parallel 4 -c 16384
fi
if [[ -n "${2:-}" ]]; then
  measure llama-cpp-python-server "$2" -m llama_cpp.server --model "$MODEL_FILE" --host 127.0.0.1 \
    --port "$PORT" --n_threads 2 --n_ctx 4096
fi
