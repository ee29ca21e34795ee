"""Soak: a bounded mixed load against the real model, with a worker killed midway.

Streams and plain requests, some hung up on mid-stream, for `--seconds` at
`--concurrency`; at half time one worker is SIGKILLed. Reports requests by outcome
and error kind, and the RSS of the API process and of the workers before and after,
so growth beyond noise shows. Not part of CI (it takes minutes); rerun with:

    .venv/bin/python benchmarks/soak.py --seconds 180
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import signal
import threading
import time
from pathlib import Path

import httpx

from warmserve.testing import ServerProcess

MODEL = "smollm2-135m-instruct"
PROMPTS = ["Tell me about the sea.", "What is 2+2?", "Name three fruits.", "Write a short poem about snow."]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_pids(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


def memory(pid: int) -> dict[str, int]:
    workers = [p for p in worker_pids(pid) if rss_kib(p) > 50_000]  # model holders, not helpers
    return {"api_kib": rss_kib(pid), "workers_kib": sum(rss_kib(p) for p in workers), "workers": len(workers)}


def one(client: httpx.Client, rng: random.Random, outcomes: collections.Counter[str]) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
        "max_tokens": rng.choice([8, 32, 96]),
        "temperature": rng.choice([0, 0.8]),
    }
    kind = rng.choice(["plain", "stream", "hangup"])
    try:
        if kind == "plain":
            response = client.post("/v1/chat/completions", json=body)
            outcomes[_label(response.status_code, response)] += 1
            return
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
            if response.status_code != 200:
                response.read()
                outcomes[_label(response.status_code, response)] += 1
                return
            for i, line in enumerate(response.iter_lines()):
                if kind == "hangup" and i >= 3:
                    outcomes["hung_up"] += 1
                    return
                if line.startswith('data: {"error"'):
                    outcomes["stream_error:" + json.loads(line[6:])["error"]["code"]] += 1
                    return
            outcomes["ok_stream"] += 1
    except httpx.HTTPError as exc:
        outcomes[f"transport:{type(exc).__name__}"] += 1


def _label(status: int, response: httpx.Response) -> str:
    if status == 200:
        return "ok"
    try:
        return f"{status}:{response.json()['error']['code']}"
    except (ValueError, KeyError):
        return str(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "soak.json")
    args = parser.parse_args()
    base_url = f"http://127.0.0.1:{args.port}"
    server = ServerProcess(["--workers", "2", "--threads", "1"], port=args.port)
    try:
        server.wait_ready()
        outcomes: collections.Counter[str] = collections.Counter()
        with httpx.Client(base_url=base_url, timeout=120) as warm:
            for _ in range(8):
                one(warm, random.Random(0), collections.Counter())
        before = memory(server.process.pid)
        deadline = time.monotonic() + args.seconds
        lock = threading.Lock()

        def loop(seed: int) -> None:
            rng = random.Random(seed)
            local: collections.Counter[str] = collections.Counter()
            with httpx.Client(base_url=base_url, timeout=120) as client:
                while time.monotonic() < deadline:
                    one(client, rng, local)
            with lock:
                outcomes.update(local)

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(args.concurrency)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds / 2)
        victim = max(worker_pids(server.process.pid), key=rss_kib)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        for thread in threads:
            thread.join()
        time.sleep(3)
        after = memory(server.process.pid)
        metrics = httpx.get(f"{base_url}/metrics").text
    finally:
        exit_code = server.stop(timeout_s=120)
    restarts = [line for line in metrics.splitlines() if line.startswith("warmserve_worker_restarts_total")]
    result = {
        "what": "mixed chat load (plain, stream, hang-up mid-stream), one worker SIGKILLed at half time",
        "machine": {"cpu_count": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "settings": {"seconds": args.seconds, "concurrency": args.concurrency, "workers": 2, "threads": 1},
        "requests": sum(outcomes.values()),
        "outcomes": dict(sorted(outcomes.items())),
        "killed_worker_pid": victim,
        "killed_at_s": round(killed_at - (deadline - args.seconds), 1),
        "worker_restarts": restarts,
        "memory_before": before,
        "memory_after": after,
        "api_rss_growth_kib": after["api_kib"] - before["api_kib"],
        "server_exit_code_after_sigterm": exit_code,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
