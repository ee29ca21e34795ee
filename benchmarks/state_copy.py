"""Saving and restoring a sequence's KV cells (the prompt cache's copies), by how the host buffer is allocated.

A slot's cells are saved (llama.cpp's per-sequence state get) before the slot goes to another request, on that
request's way to its first token, and restored (state set) into the slot that gets a cached prefix. One llama.cpp
context of the embedded SmolLM2-135M is filled with `--tokens` tokens of the benchmark passages; then, in rounds,
the sequence is saved `--saves` times into buffers kept alive (fresh memory each time, as a growing cache gets)
either into a zero-filled ctypes array (the code before) or by `NativeModel.save_sequence` as shipped, the two
taking turns; each saved state is restored once. Reported: median milliseconds of each and their ratio.
Results: benchmarks/results/state-copy.json.

    .venv/bin/python benchmarks/state_copy.py --tokens 1548 --rounds 3 --saves 10
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import llama_cpp

from warmserve.backends.llama import native
from warmserve.backends.llama.tiling import TILE_ROWS
from warmserve.config import embedded_model_path

ROOT = Path(__file__).resolve().parents[1]
Blob = ctypes.Array[ctypes.c_uint8]


def zeroed_save(model: native.NativeModel, sequence: int) -> Blob:
    """The save before: into a ctypes array, which zero-fills its buffer before llama.cpp writes it."""
    size: int = llama_cpp.llama_state_seq_get_size(model.context, sequence)
    blob = (ctypes.c_uint8 * size)()
    if llama_cpp.llama_state_seq_get_data(model.context, blob, size, sequence) != size:
        raise RuntimeError("llama.cpp saved a short state")
    return blob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=1548, help="the agent benchmark's sequence length")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/state-copy.json")
    args = parser.parse_args()
    model = native.load(
        embedded_model_path(), n_ctx=4096, n_batch=512, sequences=2, threads=1, gpu_layers=0, flash_attn="on"
    )
    text = json.dumps(json.loads((ROOT / "benchmarks/data/passages.json").read_text()))
    tokens = model.vocab.tokenize(text, True)
    while len(tokens) < args.tokens:
        tokens += tokens
    batch = native.Batch(512)
    for start in range(0, args.tokens, TILE_ROWS):
        batch.clear()
        for position in range(start, min(start + TILE_ROWS, args.tokens)):
            batch.add(tokens[position], position, 0, logits=False)
        model.decode(batch)

    kinds: dict[str, Callable[[native.NativeModel, int], Blob]] = {
        "zeroed_ctypes": zeroed_save,
        "shipped": native.NativeModel.save_sequence,
    }
    saves: dict[str, list[float]] = {kind: [] for kind in kinds}
    restores: dict[str, list[float]] = {kind: [] for kind in kinds}
    size = 0
    for round_ in range(args.rounds):
        for kind in kinds if round_ % 2 == 0 else reversed(list(kinds)):
            kept = []
            for _ in range(args.saves):
                began = time.perf_counter()
                kept.append(kinds[kind](model, 0))
                saves[kind].append(time.perf_counter() - began)
            size = len(kept[0])
            for blob in kept:
                began = time.perf_counter()
                model.restore_sequence(1, blob)
                restores[kind].append(time.perf_counter() - began)
            del kept
    result = {
        "what": "save and restore of one sequence's KV cells, by the save's buffer allocation",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform()},
        "versions": {"llama-cpp-python": version("llama-cpp-python")},
        "settings": {"tokens": args.tokens, "rounds": args.rounds, "saves": args.saves},
        "state_bytes": size,
        "save_ms_p50": {kind: statistics.median(times) * 1e3 for kind, times in saves.items()},
        "restore_ms_p50": {kind: statistics.median(times) * 1e3 for kind, times in restores.items()},
    }
    result["save_speedup_of_shipped"] = result["save_ms_p50"]["zeroed_ctypes"] / result["save_ms_p50"]["shipped"]
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    shown = ("state_bytes", "save_ms_p50", "restore_ms_p50", "save_speedup_of_shipped")
    print(json.dumps({key: result[key] for key in shown}))
    model.close()


if __name__ == "__main__":
    main()
