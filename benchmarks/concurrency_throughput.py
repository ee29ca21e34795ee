"""Aggregate generated tokens/s through warmserve at several concurrency levels.

Starts `warmserve serve` for the embedded SmolLM2 with the chosen backend and
worker/thread split, sends a bounded number of identical-length chat requests
(temperature 0, fixed max_tokens) at each concurrency level, and records the
aggregate completion tokens per second. Rerun it to compare splits side by side:

    .venv/bin/python benchmarks/concurrency_throughput.py --backend transformers --workers 1 --threads 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import yaml

from warmserve.testing import ServerProcess, start_server

QUESTIONS = [
    "Name three colours of the rainbow.",
    "What is 2+2?",
    "Write a haiku about the sea.",
    "Who wrote Hamlet?",
]


def serve(args: argparse.Namespace, workdir: Path) -> ServerProcess:
    model = {"name": "bench", "backend": args.backend, "workers": args.workers, "threads": args.threads}
    if args.backend == "transformers":
        model["max_batch_size"] = 8
    else:
        model["flash_attn"] = args.flash_attn
    config = workdir / "bench.yaml"
    config.write_text(yaml.safe_dump({"models": [model]}))
    return start_server(["--config", str(config)], port=args.port, log_path=workdir / "server.log", timeout_s=600)


def one_request(client: httpx.Client, index: int, max_tokens: int, model: str) -> int:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": QUESTIONS[index % len(QUESTIONS)]}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    response = client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    tokens: int = response.json()["usage"]["completion_tokens"]
    return tokens


def level(base_url: str, concurrency: int, requests: int, max_tokens: int, model: str) -> dict[str, float]:
    with (
        httpx.Client(base_url=base_url, timeout=600) as client,
        concurrent.futures.ThreadPoolExecutor(concurrency) as pool,
    ):
        started = time.perf_counter()
        tokens = sum(pool.map(lambda i: one_request(client, i, max_tokens, model), range(requests)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": requests,
        "tokens": tokens,
        "seconds": elapsed,
        "tokens_per_s": tokens / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["llama_cpp", "transformers"], default="transformers")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--flash-attn", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--requests", type=int, default=8, help="requests per level (bounded)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--base-url", help="measure a server already running there instead (any OpenAI server)")
    parser.add_argument("--model", default="bench", help="model name to ask for with --base-url")
    parser.add_argument("--label", help="name of the measured server, for the output file")
    args = parser.parse_args()
    label = args.label or f"{args.backend}-{args.workers}w{args.threads}t"
    out = args.out or Path(__file__).parent / "results" / f"concurrency-{label}.json"

    def measure(base_url: str) -> list[dict[str, float]]:
        level(base_url, 1, 1, 4, args.model)  # warm-up
        return [
            level(base_url, int(c), max(args.requests, int(c)), args.max_tokens, args.model)
            for c in args.concurrency.split(",")
        ]

    if args.base_url:
        levels = measure(args.base_url)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            server = serve(args, Path(tmp))
            try:
                levels = measure(server.base_url)
            finally:
                server.stop()
    result = {
        "what": "aggregate completion tokens/s, chat, temperature 0, embedded SmolLM2-135M-Instruct",
        "machine": {"cpu_count": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "versions": {
            "python": platform.python_version(),
            **{name: version(name) for name in ("torch", "transformers", "llama-cpp-python")},
        },
        "server": label,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "levels": levels,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for row in levels:
        print(f"concurrency {row['concurrency']:>2}: {row['tokens_per_s']:7.1f} tokens/s")


if __name__ == "__main__":
    main()
