"""Prompt rows through CPU flash attention's two kernels: the time of one 64-row block by context length.

llama.cpp computes 64 or more rows of a sequence in a micro-batch with a tiled kernel and fewer with a
per-row kernel (backends/llama/tiling.py). One llama.cpp context of the embedded SmolLM2-135M (flash
attention on, like warmserve's default) is filled to 2,048 tokens of the benchmark passages block by
block, each block either as one 64-row call (tiled) or as 63 rows then 1 (per-row); the two kinds take
turns round by round, and each block's time is the minimum over rounds. Reported per context length:
both times and their ratio. Results: benchmarks/results/prefill-kernels.json.

    .venv/bin/python benchmarks/prefill_kernels.py --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from importlib.metadata import version
from pathlib import Path

from warmserve.backends.llama import native
from warmserve.backends.llama.tiling import TILE_ROWS
from warmserve.config import embedded_model_path

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/prefill-kernels.json")
    args = parser.parse_args()
    model = native.load(
        embedded_model_path(),
        n_ctx=CONTEXT,
        n_batch=512,
        sequences=1,
        threads=args.threads,
        gpu_layers=0,
        flash_attn="on",
    )
    text = json.dumps(json.loads((ROOT / "benchmarks/data/passages.json").read_text()))
    tokens = model.vocab.tokenize(text, True)
    while len(tokens) < CONTEXT:
        tokens += tokens
    batch = native.Batch(512)

    def feed(start: int, count: int) -> None:
        batch.clear()
        for position in range(start, start + count):
            batch.add(tokens[position], position, 0, logits=False)
        model.decode(batch)

    def fill(tiled: bool) -> list[float]:
        model.forget(0)
        times = []
        for start in range(0, CONTEXT, TILE_ROWS):
            began = time.perf_counter()
            if tiled:
                feed(start, TILE_ROWS)
            else:
                feed(start, TILE_ROWS - 1)
                feed(start + TILE_ROWS - 1, 1)
            times.append(time.perf_counter() - began)
        return times

    runs: dict[str, list[list[float]]] = {"per_row": [], "tiled": []}
    for round_ in range(args.rounds):
        for kind in ("per_row", "tiled") if round_ % 2 == 0 else ("tiled", "per_row"):
            runs[kind].append(fill(kind == "tiled"))
    blocks = []
    for index in range(CONTEXT // TILE_ROWS):
        per_row = min(r[index] for r in runs["per_row"])
        tiled = min(r[index] for r in runs["tiled"])
        blocks.append({"context": index * TILE_ROWS, "per_row_ms": per_row * 1e3, "tiled_ms": tiled * 1e3})
        blocks[-1]["ratio"] = per_row / tiled
    result = {
        "what": "one 64-row prompt block, tiled (one call) against per-row (63 + 1 rows), by context length",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "threads": args.threads},
        "versions": {"llama-cpp-python": version("llama-cpp-python")},
        "rounds": args.rounds,
        "blocks": blocks,
        "whole_prompt_s": {kind: sum(min(r[i] for r in runs[kind]) for i in range(len(blocks))) for kind in runs},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for block in blocks[::4]:
        print(
            f"context {block['context']:5d}: per-row {block['per_row_ms']:6.0f} ms, tiled {block['tiled_ms']:6.0f} ms, "
            f"{block['ratio']:.2f}x"
        )
    model.close()


if __name__ == "__main__":
    main()
