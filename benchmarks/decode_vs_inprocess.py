"""Single-request speed through warmserve next to llama-cpp-python in this process.

Same weights, same threads, same request (temperature 0, so both produce the same
tokens), measured alternately in one run so machine noise hits both sides. Reports
model load time, time to first token and decode tokens/s, and their ratios.

    .venv/bin/python benchmarks/decode_vs_inprocess.py --rounds 5 --max-tokens 128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import llama_cpp

from warmserve.config import EMBEDDED_MODEL_NAME, embedded_model_path
from warmserve.testing import ServerProcess

PROMPT = "Here is a long story about a lighthouse keeper and the sea.\n\nOnce upon a time,"


def timed_stream(chunks: object) -> dict[str, float]:
    """Seconds to the first text, and decode tokens/s after it (one chunk per token)."""
    start = time.perf_counter()
    stamps = [time.perf_counter() for _ in chunks]  # type: ignore[attr-defined]
    tokens = len(stamps)
    return {
        "ttft_s": stamps[0] - start,
        "decode_tokens_per_s": (tokens - 1) / (stamps[-1] - stamps[0]),
        "tokens": tokens,
    }


def server_chunks(base_url: str, max_tokens: int) -> object:
    body = {
        "model": EMBEDDED_MODEL_NAME,
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{base_url}/v1/completions", json=body, timeout=300) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                payload = json.loads(line[6:])
                if payload["choices"] and payload["choices"][0]["text"]:
                    yield payload


def local_chunks(llm: llama_cpp.Llama, max_tokens: int) -> object:
    for chunk in llm.create_completion(PROMPT, max_tokens=max_tokens, temperature=0, stream=True):
        if chunk["choices"][0]["text"]:
            yield chunk


def start_server(port: int, threads: int, log: Path) -> tuple[ServerProcess, float, float]:
    started = time.perf_counter()
    server = ServerProcess(["--threads", str(threads)], port=port, log_path=log).ready_or_stopped()
    ready_s = time.perf_counter() - started
    load_s = float(re.findall(r"model loaded in ([\d.]+) s", log.read_text())[0])
    return server, ready_s, load_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "decode-vs-inprocess.json")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)

    load_started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(embedded_model_path()), n_ctx=4096, n_threads=args.threads, verbose=False)
    local_load_s = time.perf_counter() - load_started
    server_log = Path(tempfile.mkstemp(prefix="warmserve-bench-", suffix=".log")[1])
    server, ready_s, server_load_s = start_server(args.port, args.threads, server_log)
    try:
        base_url = f"http://127.0.0.1:{args.port}"
        for _ in server_chunks(base_url, 8):  # warm-up both sides once
            pass
        for _ in local_chunks(llm, 8):
            pass
        server_runs, local_runs = [], []
        for _ in range(args.rounds):
            server_runs.append(timed_stream(server_chunks(base_url, args.max_tokens)))
            local_runs.append(timed_stream(local_chunks(llm, args.max_tokens)))
    finally:
        server.stop()

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    result = {
        "what": "one streamed completion, temperature 0, same prompt; server vs llama-cpp-python in process",
        "machine": {"cpu_count": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "versions": {"python": platform.python_version(), "llama-cpp-python": version("llama-cpp-python")},
        "settings": {"threads": args.threads, "max_tokens": args.max_tokens, "rounds": args.rounds},
        "load_s": {
            "server_worker": server_load_s,
            "in_process": local_load_s,
            "server_start_to_ready": ready_s,
        },
        "tokens": {"server": median(server_runs, "tokens"), "in_process": median(local_runs, "tokens")},
        "decode_tokens_per_s": {
            "server": median(server_runs, "decode_tokens_per_s"),
            "in_process": median(local_runs, "decode_tokens_per_s"),
        },
        "ttft_s": {"server": median(server_runs, "ttft_s"), "in_process": median(local_runs, "ttft_s")},
        "runs": {"server": server_runs, "in_process": local_runs},
    }
    result["ratio_server_over_in_process"] = {
        "decode_tokens_per_s": result["decode_tokens_per_s"]["server"] / result["decode_tokens_per_s"]["in_process"],
        "ttft": result["ttft_s"]["server"] / result["ttft_s"]["in_process"],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {k: result[k] for k in ("load_s", "decode_tokens_per_s", "ttft_s", "ratio_server_over_in_process")},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
