"""Soak: a bounded mixed load against the real model, with workers SIGKILLed while it runs.

Streams and plain requests, some hung up on mid-stream, for `--seconds` at
`--concurrency`. By default one worker is SIGKILLed at half time; with `--kill-every N`
one is SIGKILLed every N seconds instead, on schedule whether or not its replacement has
loaded, alternating between the two workers (the victim is the largest model worker that
survived the previous kill). Requests running on a killed worker should resume on the
other one, so every request should end ok (or hung up by the client, on purpose).

Reports requests by outcome and error kind, with `failed` counting all but ok, ok_stream and
hung_up; the stall of each stream that was running on a killed worker, next to the normal gap
between chunks; the resumed / poison / restart counters from /metrics; and the RSS of the API
process and of the workers before and after, so growth beyond noise shows. A stream is known to
have run on a killed worker when its response id (the chunks' `id`) is in the server log's
"worker N (pid P, ...) died holding ID, ..." line for a pid this script killed; its stall is the
longest gap between consecutive chunks that ends after the kill and starts at most
STALL_WINDOW_S after it (chunks the worker sent just before it died may still arrive after the
kill). Not part of CI (it takes minutes); rerun with:

    .venv/bin/python benchmarks/soak.py --seconds 180                  # results/soak.json
    .venv/bin/python benchmarks/soak.py --seconds 180 --kill-every 30  # results/soak-kill-every-30s.json
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import math
import os
import platform
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from warmserve.testing import ServerProcess

MODEL = "smollm2-135m-instruct"
PROMPTS = ["Tell me about the sea.", "What is 2+2?", "Name three fruits.", "Write a short poem about snow."]
RESULTS = Path(__file__).parent / "results"
MODEL_WORKER_MIN_KIB = 50_000  # a child this large holds the model; smaller ones are helpers
STALL_WINDOW_S = 0.5
NOT_FAILED = ("ok", "ok_stream", "hung_up")
DIED = re.compile(r"worker (\d+) \(pid (\d+), exit code (\S+)\) died holding (.+)$")


@dataclass
class Record:
    """One request as the client saw it: chunk arrival times (time.monotonic()) for streams."""

    kind: str  # plain, stream or hangup
    outcome: str = ""
    response_id: str | None = None
    chunk_times: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Kill:
    pid: int
    at: float  # time.monotonic() just after the SIGKILL


@dataclass(frozen=True)
class Death:
    """A "died holding" line of the server log."""

    worker: int
    pid: int
    exit_code: str
    held: tuple[str, ...]


def rss_kib(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):  # exited since it was listed
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended since
            continue
    return children


def model_workers(pid: int) -> list[int]:
    return [p for p in worker_pids(pid) if rss_kib(p) > MODEL_WORKER_MIN_KIB]


def memory(pid: int) -> dict[str, int]:
    workers = model_workers(pid)
    return {"api_kib": rss_kib(pid), "workers_kib": sum(rss_kib(p) for p in workers), "workers": len(workers)}


def one(client: httpx.Client, rng: random.Random) -> Record:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
        "max_tokens": rng.choice([8, 32, 96]),
        "temperature": rng.choice([0, 0.8]),
    }
    record = Record(kind=rng.choice(["plain", "stream", "hangup"]))
    try:
        if record.kind == "plain":
            response = client.post("/v1/chat/completions", json=body)
            record.outcome = _label(response.status_code, response)
            if response.status_code == 200:
                record.response_id = response.json()["id"]
            return record
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
            if response.status_code != 200:
                response.read()
                record.outcome = _label(response.status_code, response)
                return record
            _read_stream(response, record)
    except httpx.HTTPError as exc:
        record.outcome = f"transport:{type(exc).__name__}"
    return record


def _read_stream(response: httpx.Response, record: Record) -> None:
    for i, line in enumerate(response.iter_lines()):
        now = time.monotonic()
        if record.kind == "hangup" and i >= 3:
            record.outcome = "hung_up"
            return
        if line.startswith('data: {"error"'):
            record.outcome = "stream_error:" + json.loads(line[6:])["error"]["code"]
            return
        if line.startswith("data: {"):
            record.chunk_times.append(now)
            if record.response_id is None:
                record.response_id = json.loads(line[6:])["id"]
    record.outcome = "ok_stream"


def _label(status: int, response: httpx.Response) -> str:
    if status == 200:
        return "ok"
    try:
        return f"{status}:{response.json()['error']['code']}"
    except (ValueError, KeyError):
        return str(status)


def kill_offsets(seconds: float, every: float | None) -> list[float]:
    """When to kill, in seconds from the start: at half time, or every `every` seconds before the end."""
    if every is None:
        return [seconds / 2]
    return [every * k for k in range(1, math.ceil(seconds / every)) if every * k < seconds]


def pick_victim(api_pid: int, survivors: set[int]) -> int | None:
    """The largest model worker that survived the last kill (so the two alternate), else the largest."""
    workers = model_workers(api_pid)
    return max([p for p in workers if p in survivors] or workers, key=rss_kib, default=None)


def run_kills(api_pid: int, start: float, offsets: list[float]) -> list[Kill]:
    kills: list[Kill] = []
    survivors: set[int] = set()
    for offset in offsets:
        time.sleep(max(0.0, start + offset - time.monotonic()))
        victim = pick_victim(api_pid, survivors)
        if victim is None:
            print(f"no model worker to kill at {offset:.0f} s", file=sys.stderr)
            continue
        survivors = set(model_workers(api_pid)) - {victim}
        os.kill(victim, signal.SIGKILL)
        kills.append(Kill(victim, time.monotonic()))
    return kills


def deaths(log: str) -> list[Death]:
    found = []
    for line in log.splitlines():
        match = DIED.search(line)
        if match:
            held = tuple(_request_id(item) for item in match[4].split(", "))
            found.append(Death(int(match[1]), int(match[2]), match[3], held))
    return found


def _request_id(held: str) -> str:
    """The response id a held request id comes from (the pool adds `~N` to a duplicate)."""
    return held.strip().split("~")[0]


def stall_gap(times: list[float], killed_at: float) -> int | None:
    """Index i of the stall: the longest gap times[i] -> times[i+1] ending after the kill, starting
    at most STALL_WINDOW_S after it; None without a chunk on both sides of the kill."""
    if not times or times[0] > killed_at:
        return None
    gaps = [
        (b - a, i)
        for i, (a, b) in enumerate(itertools.pairwise(times))
        if b > killed_at and a <= killed_at + STALL_WINDOW_S
    ]
    return max(gaps)[1] if gaps else None


def percentiles_ms(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)

    def nearest_rank(q: float) -> float | None:
        return round(1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1) if ordered else None

    return {"n": len(ordered), "p50_ms": nearest_rank(0.5), "p95_ms": nearest_rank(0.95), "max_ms": nearest_rank(1)}


def resumed_report(records: list[Record], kills: list[Kill], died: list[Death], start: float) -> dict[str, object]:
    """Per kill, what the dying worker held; the stalls of its streams next to normal chunk gaps."""
    by_id = {r.response_id: r for r in records if r.response_id is not None}
    by_pid = {death.pid: death for death in died}
    per_kill: list[dict[str, object]] = []
    stalls: list[float] = []
    stalled: set[tuple[int, int]] = set()  # (id(record), gap index): kept out of the normal gaps
    no_stall = 0
    for kill in kills:
        death = by_pid.get(kill.pid)
        held = [by_id.get(request_id) for request_id in death.held] if death else []
        kinds = collections.Counter(r.kind if r is not None else "not_seen_by_client" for r in held)
        worker = death.worker if death else None
        per_kill.append({"at_s": round(kill.at - start, 1), "pid": kill.pid, "worker": worker, "held": dict(kinds)})
        for record in held:
            if record is None or record.kind == "plain":
                continue
            gap = stall_gap(record.chunk_times, kill.at)
            if gap is None:
                no_stall += 1
                continue
            stalls.append(record.chunk_times[gap + 1] - record.chunk_times[gap])
            stalled.add((id(record), gap))
    normal = [
        b - a
        for r in records
        if r.outcome == "ok_stream"
        for i, (a, b) in enumerate(itertools.pairwise(r.chunk_times))
        if (id(r), i) not in stalled
    ]
    return {
        "kills": per_kill,
        "resumed_streams": len({record for record, _ in stalled}),
        "stall": percentiles_ms(stalls),
        "held_streams_without_a_chunk_on_both_sides": no_stall,
        "normal_chunk_gap": percentiles_ms(normal),
        "unplanned_worker_deaths": [dataclasses.asdict(d) for d in died if d.pid not in {k.pid for k in kills}],
    }


def counter(metrics: str, name: str) -> float:
    return sum(
        (float(line.split()[-1]) for line in metrics.splitlines() if line.startswith((f"{name}{{", f"{name} "))), 0.0
    )


def log_problems(log: str, limit: int = 20) -> list[str]:
    lines = [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--kill-every", type=float, default=None, help="SIGKILL a worker every N s (default: once)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/soak.json, or soak-kill-every-Ns.json")
    args = parser.parse_args()
    out = args.out or RESULTS / (
        "soak.json" if args.kill_every is None else f"soak-kill-every-{args.kill_every:g}s.json"
    )
    base_url = f"http://127.0.0.1:{args.port}"
    server = ServerProcess(["--workers", "2", "--threads", "1"], port=args.port)
    print(f"server log: {server.log_path}", file=sys.stderr)
    try:
        server.wait_ready()
        records: list[Record] = []
        with httpx.Client(base_url=base_url, timeout=120) as warm:
            for _ in range(8):
                one(warm, random.Random(0))
        before = memory(server.process.pid)
        start = time.monotonic()
        deadline = start + args.seconds
        lock = threading.Lock()

        def loop(seed: int) -> None:
            rng = random.Random(seed)
            local: list[Record] = []
            with httpx.Client(base_url=base_url, timeout=120) as client:
                while time.monotonic() < deadline:
                    local.append(one(client, rng))
            with lock:
                records.extend(local)

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(args.concurrency)]
        for thread in threads:
            thread.start()
        kills = run_kills(server.process.pid, start, kill_offsets(args.seconds, args.kill_every))
        for thread in threads:
            thread.join()
        time.sleep(3)
        after = memory(server.process.pid)
        metrics = httpx.get(f"{base_url}/metrics").text
    finally:
        exit_code = server.stop(timeout_s=120)
    log = server.log_path.read_text(errors="replace")
    outcomes = collections.Counter(r.outcome for r in records)
    killing = (
        "one worker SIGKILLed at half time"
        if args.kill_every is None
        else f"a worker SIGKILLed every {args.kill_every:g} s"
    )
    result = {
        "what": f"mixed chat load (plain, stream, hang-up mid-stream), {killing}",
        "machine": {"cpu_count": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "settings": {
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "workers": 2,
            "threads": 1,
            "kill_every_s": args.kill_every,
        },
        "requests": len(records),
        "outcomes": dict(sorted(outcomes.items())),
        "failed": sum(n for outcome, n in outcomes.items() if outcome not in NOT_FAILED),
        **resumed_report(records, kills, deaths(log), start),
        "metrics": {
            name: counter(metrics, f"warmserve_{name}_total")
            for name in ("requests_resumed", "poison_requests", "worker_restarts")
        },
        "memory_before": before,
        "memory_after": after,
        "api_rss_growth_kib": after["api_kib"] - before["api_kib"],
        "server_log_errors": log_problems(log),
        "server_exit_code_after_sigterm": exit_code,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
