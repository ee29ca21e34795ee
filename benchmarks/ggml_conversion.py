"""How long converting an old GGJT v3 file to GGUF takes: the test's stand-in, and a file of the tutorial's size.

1. The stand-in the tests and the example serve (tests/ggml_model.py: a 2-layer LLaMA with 301 tokens,
   F32/F16/Q8_0 tensors): `converted()` in process, into a fresh cache folder each round, and the
   whole `warmserve convert` command (Python start-up included).
2. A GGJT v3 file with LLaMA-2-7B's shape and `llama-2-7b-chat.ggmlv3.q4_K_S.bin`'s size (32 layers of
   4096, 32,000 tokens, Q4_K matrices, F32 norms; the blocks are zeros, which the converter copies
   like any others), converted once in process. It is written just before, so it is read from the page
   cache: a first conversion from a cold disk also waits for the disk to read 3.8 GB.

Results: benchmarks/results/ggml-conversion.json.

    .venv/bin/python benchmarks/ggml_conversion.py [--rounds 20] [--skip-big]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ggml_model import TinyLlama, write_ggjt  # noqa: E402

from warmserve.backends.llama.ggml.cache import converted  # noqa: E402
from warmserve.backends.llama.ggml.convert import ConversionOptions  # noqa: E402

# LLaMA-2-7B: n_vocab, n_embd, n_mult, n_head, n_layer, n_rot, ftype (MOSTLY_Q4_K_S)
LLAMA_7B = (32000, 4096, 256, 32, 32, 128, 14)
N_FF_7B = 11008
Q4_K, F32 = (12, 256, 144), (0, 1, 4)  # ggml type, block elements, block bytes
CHUNK = 64 << 20


def time_in_process(model: Path, rounds: int, folder: Path) -> list[float]:
    seconds = []
    for round_ in range(rounds):
        cache = folder / f"cache-{round_}"
        started = time.perf_counter()
        converted(model, cache, ConversionOptions())
        seconds.append(time.perf_counter() - started)
        shutil.rmtree(cache)
    return seconds


def time_command(model: Path, rounds: int, folder: Path) -> list[float]:
    seconds = []
    for round_ in range(rounds):
        cache = folder / f"cli-{round_}"
        started = time.perf_counter()
        command = [sys.executable, "-m", "warmserve", "convert", str(model), "--cache-dir", str(cache)]
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
        shutil.rmtree(cache)
    return seconds


def _zeros(out: BinaryIO, size: int) -> None:
    block = bytes(min(size, CHUNK))
    while size:
        out.write(block[: min(size, CHUNK)])
        size -= min(size, CHUNK)


def write_7b_shaped(path: Path) -> int:
    """A GGJT v3 file shaped like LLaMA-2-7B q4_K_S; its size in bytes."""
    n_vocab, n_embd, _, _, n_layer, _, _ = LLAMA_7B
    tensors: list[tuple[str, tuple[int, int, int], tuple[int, ...]]] = [
        ("tok_embeddings.weight", Q4_K, (n_embd, n_vocab)),
        ("norm.weight", F32, (n_embd,)),
        ("output.weight", Q4_K, (n_embd, n_vocab)),
    ]
    for i in range(n_layer):
        for name in ("wq", "wk", "wv", "wo"):
            tensors.append((f"layers.{i}.attention.{name}.weight", Q4_K, (n_embd, n_embd)))
        tensors.append((f"layers.{i}.attention_norm.weight", F32, (n_embd,)))
        tensors.append((f"layers.{i}.feed_forward.w1.weight", Q4_K, (n_embd, N_FF_7B)))
        tensors.append((f"layers.{i}.feed_forward.w2.weight", Q4_K, (N_FF_7B, n_embd)))
        tensors.append((f"layers.{i}.feed_forward.w3.weight", Q4_K, (n_embd, N_FF_7B)))
        tensors.append((f"layers.{i}.ffn_norm.weight", F32, (n_embd,)))
    with path.open("wb") as out:
        out.write(b"tjgg" + struct.pack("<I", 3) + struct.pack("<7i", *LLAMA_7B))
        for index in range(n_vocab):
            text = b"" if index <= 2 else bytes([index - 3]) if index < 259 else f" piece{index}".encode()
            out.write(struct.pack("<I", len(text)) + text + struct.pack("<f", -float(index)))
        for name, (type_id, block, block_bytes), dims in tensors:
            encoded = name.encode()
            out.write(struct.pack(f"<3i{len(dims)}i", len(dims), len(encoded), type_id, *dims) + encoded)
            out.write(bytes(-out.tell() % 32))
            elements = 1
            for d in dims:
                elements *= d
            _zeros(out, elements // block * block_bytes)
        return out.tell()


def summary(seconds: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(seconds), 4), "min_s": round(min(seconds), 4), "rounds": len(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--skip-big", action="store_true", help="Only the stand-in.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ggml-conversion.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
    }
    with tempfile.TemporaryDirectory(prefix="ggml-bench-") as tmp:
        folder = Path(tmp)
        stand_in = write_ggjt(TinyLlama(), folder / "tiny.ggmlv3.q8_0.bin")
        results["stand_in"] = {
            "file_bytes": stand_in.stat().st_size,
            "in_process": summary(time_in_process(stand_in, args.rounds, folder)),
            "warmserve_convert_command": summary(time_command(stand_in, max(3, args.rounds // 4), folder)),
        }
        print(json.dumps(results["stand_in"], indent=2))
        if not args.skip_big:
            big = folder / "llama-2-7b-shaped.ggmlv3.q4_K.bin"
            size = write_7b_shaped(big)
            seconds = time_in_process(big, 1, folder)
            results["llama_2_7b_sized"] = {
                "file_bytes": size,
                "in_process": summary(seconds),
                "gb_per_s": round(size / seconds[0] / 1e9, 2),
                "note": "source in the page cache (written just before); a cold disk adds its read time",
            }
            print(json.dumps(results["llama_2_7b_sized"], indent=2))
    results["machine"]["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
