"""What resumability costs per token: the `Drawn` event a worker sends, and the API process's record of it.

A step of 8 decoding requests is one `RequestEvents` message. With resumption each request's
token also carries a `Drawn` event, which the worker pickles and the API process unpickles and
records (`Progress.observe` via `RequestStream.push`). This times both sides of one such
message, with and without the `Drawn` events, alternating, for streamed text and for held
(non-streamed) requests, whose `Drawn` events alone make up the message. A worker batches held
requests' events (at most every 0.5 s), so for them this is the CPU per token only; the per-step
wake-up of the API process that the batching avoids shows in `interleaved.py --no-stream`.
Results: benchmarks/results/resume-bookkeeping.json.

    .venv/bin/python benchmarks/resume_bookkeeping.py
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import platform
import statistics
import time
from pathlib import Path

from warmserve.generation import Drawn, GenerationEvent, GenerationRequest, TextDelta
from warmserve.pool.messages import RequestEvents
from warmserve.pool.stream import RequestStream

SEQUENCES = 8
ROUNDS = 7
STEPS = 20_000
OUT = Path(__file__).parent / "results" / "resume-bookkeeping.json"


def step(with_drawn: bool, with_text: bool) -> RequestEvents:
    events: list[tuple[str, GenerationEvent]] = []
    for sequence in range(SEQUENCES):
        if with_drawn:
            events.append((f"chatcmpl-{sequence:024d}", Drawn(1000 + sequence)))
        if with_text:
            events.append((f"chatcmpl-{sequence:024d}", TextDelta(" word")))
    return RequestEvents(tuple(events))


def per_step_us(message: RequestEvents, streams: dict[str, RequestStream]) -> float:
    """Pickle (the worker), unpickle and push every event (the API process): µs per step."""
    started = time.perf_counter()
    for _ in range(STEPS):
        received: RequestEvents = pickle.loads(pickle.dumps(message))
        for request_id, event in received.events:
            streams[request_id].push(event)
    elapsed = time.perf_counter() - started
    for stream in streams.values():  # keep the queues from growing across runs
        while not stream._queue.empty():
            stream._queue.get_nowait()
    return elapsed / STEPS * 1e6


async def measure() -> dict[str, object]:
    request = GenerationRequest(prompt="x")
    streams = {
        f"chatcmpl-{sequence:024d}": RequestStream(f"chatcmpl-{sequence:024d}", lambda _: None, 3600, None, request)
        for sequence in range(SEQUENCES)
    }
    cases = {
        "streamed, before": step(with_drawn=False, with_text=True),
        "streamed, with Drawn": step(with_drawn=True, with_text=True),
        "held, before (no message)": None,
        "held, with Drawn": step(with_drawn=True, with_text=False),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):  # alternating, so the machine's noise falls on every case alike
        for name, message in cases.items():
            samples[name].append(0.0 if message is None else per_step_us(message, streams))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for stream in streams.values():
        stream.close()
    return {
        "what": f"µs per step of {SEQUENCES} decoding requests: pickle, unpickle, push every event (median of rounds)",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {"sequences": SEQUENCES, "rounds": ROUNDS, "steps_per_round": STEPS},
        "median_us_per_step": medians,
        "added_us_per_token": {
            "streamed": (medians["streamed, with Drawn"] - medians["streamed, before"]) / SEQUENCES,
            "held": medians["held, with Drawn"] / SEQUENCES,
        },
        "rounds": samples,
    }


def main() -> None:
    result = asyncio.run(measure())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("median_us_per_step", "added_us_per_token")}, indent=1))


if __name__ == "__main__":
    main()
