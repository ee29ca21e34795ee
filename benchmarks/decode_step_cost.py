"""What one decode step of n sequences costs in llama.cpp, batched in one call or one call each.

The engine's grouping choice (backends/llama/decode_grouping.py) and the pool's split of the CPU both
follow from these costs. In process, on the embedded SmolLM2-135M-Instruct Q4_1: n sequences are
prefilled, then the same step is timed (median of --repeats) as one llama_decode call with n
output rows, as n calls of one row, and as one call with a single output row (what the body of
the model costs without the output layer's batched kernel).

    .venv/bin/python benchmarks/decode_step_cost.py --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from warmserve.backends.llama import native
from warmserve.backends.llama.engine import LlamaCppEngine
from warmserve.bench.prompt import prompt_text
from warmserve.config import ModelSpec, embedded_model_path
from warmserve.generation import GenerationRequest, SamplingParams

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1, 2, 3, 4, 8)


def median_ms(run: Callable[[int], None], repeats: int) -> float:
    times = []
    for k in range(repeats):
        started = time.perf_counter()
        run(k)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def step_costs(engine: LlamaCppEngine, batch: native.Batch, n: int, repeats: int) -> dict[str, float]:
    """Prefill n sequences, time their next step three ways, then free them."""
    ids = [f"{n}-{i}" for i in range(n)]
    for i, request_id in enumerate(ids):
        prompt = prompt_text(n * 100 + i, 32)
        engine.add(request_id, GenerationRequest(prompt=prompt, sampling=SamplingParams(temperature=0)))
    while any(slot.pending for slot in engine._slots if slot.busy):
        engine.step()
    model = engine._native
    rows = [(slot.sequence, len(slot.cached)) for slot in engine._slots if slot.busy]

    def together(k: int, outputs: int) -> None:
        batch.clear()
        for i, (sequence, position) in enumerate(rows):
            batch.add(100, position + k, sequence, logits=i < outputs)
        model.decode(batch)

    def each(k: int) -> None:
        for sequence, position in rows:
            batch.clear()
            batch.add(100, position + k, sequence, logits=True)
            model.decode(batch)

    ways: dict[str, Callable[[int], None]] = {
        "one_call_ms": lambda k: together(k, n),
        "one_call_each_ms": each,
        "one_call_one_output_row_ms": lambda k: together(k, 1),
    }
    result = {}
    for name, run in ways.items():
        result[name] = median_ms(run, repeats)
        for sequence, position in rows:  # forget the timed tokens before the next way
            model.forget(sequence, position)
    for request_id in ids:
        engine.cancel(request_id)
    return result


def costs(threads: int, repeats: int) -> dict[int, dict[str, float]]:
    engine = LlamaCppEngine(ModelSpec(path=str(embedded_model_path()), threads=threads, slots=max(SIZES)))
    batch = native.Batch(max(SIZES))
    try:
        return {n: step_costs(engine, batch, n, repeats) for n in SIZES}
    finally:
        batch.free()
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "decode-step-cost.json")
    args = parser.parse_args()
    measured = {threads: costs(threads, args.repeats) for threads in args.threads}
    result = {
        "what": "median milliseconds of one decode step of n one-token sequences, in process",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "versions": {"python": platform.python_version(), "llama-cpp-python": version("llama-cpp-python")},
        "settings": {"repeats": args.repeats, "model": embedded_model_path().name},
        "threads": measured,
    }
    args.out.write_text(json.dumps(result, indent=1))
    for threads, by_size in measured.items():
        for n, row in by_size.items():
            cells = "  ".join(f"{key} {value:6.1f}" for key, value in row.items())
            print(f"threads {threads}  n {n}:  {cells}")


if __name__ == "__main__":
    main()
