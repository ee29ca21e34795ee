"""One server, three APIs: chat completions, the Responses API and Anthropic's Messages API, side by side.

They share the engine, so their tokens/s and time to first token should be within noise of
each other; this measures the cost of each wire format's request translation and event
rendering. One `warmserve serve` (default settings, the embedded SmolLM2) is loaded in rounds;
each round runs every API at each concurrency level, in a rotated order, with prompts numbered
apart so no API reuses another's prompt cache. The report gives the median over rounds and each
API's ratio to chat's.

    .venv/bin/python benchmarks/wire_formats.py --rounds 3 --out benchmarks/results/wire-formats.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from warmserve.bench.loadgen import measure, run_level
from warmserve.bench.settings import BenchSettings
from warmserve.bench.stats import summarise
from warmserve.bench.wire import Endpoint
from warmserve.testing import ServerProcess

APIS: tuple[Endpoint, ...] = ("chat", "responses", "messages")


async def one_level(base_url: str, api: Endpoint, concurrency: int, requests: int, first: int) -> dict[str, Any]:
    settings = BenchSettings(base_url=base_url, endpoint=api, max_tokens=64, prompt_tokens=128, requests=requests)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(300)) as client:
        model = (await client.get("/models")).json()["data"][0]["id"]
        await measure(client, settings, model, first - 1, 0.0, [])  # warm the connection and the route
        summary = summarise(await run_level(client, settings, model, concurrency, first))
    if summary.errors or summary.completed < requests:
        raise RuntimeError(f"{api} at {concurrency}: {summary.completed}/{requests} done, {summary.error_messages}")
    return {"tokens_per_s": summary.tokens_per_s, "ttft_p50_s": summary.ttft_s.p50, "ttft_p95_s": summary.ttft_s.p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="1,8", help="concurrency levels, comma-separated")
    parser.add_argument("--requests", type=int, default=16, help="requests per API per level per round")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {api: {level: [] for level in levels} for api in APIS}
    with tempfile.TemporaryDirectory() as data, ServerProcess(["--log-level", "warning", "--data-dir", data]) as server:
        base_url = server.openai_base_url
        number = 1_000
        for round_index in range(args.rounds):
            order = APIS[round_index % len(APIS) :] + APIS[: round_index % len(APIS)]
            for level in levels:
                for api in order:
                    result = asyncio.run(one_level(base_url, api, level, args.requests, number))
                    number += args.requests + 1
                    runs[api][level].append(result)
                    print(f"round {round_index + 1} c={level} {api}: {result}", flush=True)
    medians = {
        api: {level: {key: statistics.median(run[key] for run in runs[api][level]) for key in runs[api][level][0]}
              for level in levels}
        for api in APIS
    }  # fmt: skip
    ratios = {
        api: {
            level: {key: medians[api][level][key] / medians["chat"][level][key] for key in medians[api][level]}
            for level in levels
        }
        for api in APIS
    }
    print("\nmedian over rounds (ratio to chat)")
    print(f"{'api':<10} {'c':>3} {'tokens/s':>16} {'TTFT p50 ms':>18} {'TTFT p95 ms':>18}")
    for api in APIS:
        for level in levels:
            m, r = medians[api][level], ratios[api][level]
            print(
                f"{api:<10} {level:>3} {m['tokens_per_s']:>9.1f} ({r['tokens_per_s']:.2f})"
                f" {m['ttft_p50_s'] * 1000:>10.0f} ({r['ttft_p50_s']:.2f})"
                f" {m['ttft_p95_s'] * 1000:>10.0f} ({r['ttft_p95_s']:.2f})"
            )
    if args.out:
        document = {
            "benchmark": "wire_formats",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"platform": platform.platform(), "processor": platform.processor()},
            "settings": vars(args) | {"out": str(args.out), "max_tokens": 64, "prompt_tokens": 128},
            "runs": runs,
            "medians": medians,
            "ratios_to_chat": ratios,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
