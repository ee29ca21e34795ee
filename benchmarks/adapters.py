"""What LoRA adapters cost: aggregate tokens/s of 4 requests at once on one engine, both engines.

In process, one engine with 4 slots on one thread, the embedded SmolLM2-135M-Instruct (Q4_1 GGUF for
llama.cpp; the same weights dequantized for transformers), and the LoRA the tests train
(tests/lora.py: rank 8 on q_proj and v_proj; a GGUF LoRA for llama.cpp, the PEFT folder for
transformers), loaded under two names as two adapters. Cases, each 4 requests started together:

    no adapters   an engine without adapters: the plain model
    none          the engine with both adapters loaded, every request on the base model
    one adapter   all 4 requests on one adapter
    two adapters  2 requests on each adapter (A, B, A, B)

Every request decodes exactly --tokens tokens (greedy, end-of-generation tokens biased away) from a
short prompt of its own (numbered, so no KV cells are reused). Tokens/s is all generated tokens over
the wall time from the first add to the last token, prompts included. The cases run interleaved, in
an order rotated each round. Reported: the median per case, its ratio to `none`'s median, and the
median of each round's ratio to that round's `none`.

For llama.cpp, which applies an adapter to a whole context, the ways two adapters could share a
worker's steps are also measured under the engine, with llama.cpp's calls alone (4 sequences, 2 per
adapter, decode steps only): one batch per adapter each step with the applied adapter first (what
the engine does), the same in a fixed order (a change more per step), and one adapter per step,
alternating (what llama-server does with per-request LoRAs), beside one batch on one adapter.

Results: benchmarks/results/adapters.json.

    .venv/bin/python benchmarks/adapters.py --tokens 64 --rounds 5 --hf-tokens 32 --hf-rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/lora.py builds the adapter

from tests import lora  # noqa: E402

from warmserve.adapters import AdapterSpec  # noqa: E402
from warmserve.backends.base import Engine  # noqa: E402
from warmserve.config import ModelSpec, embedded_model_path  # noqa: E402
from warmserve.generation import Finished, GenerationRequest, SamplingParams  # noqa: E402

CONCURRENCY = 4
PROMPT = "Once upon a time, in a village by the sea, there lived"
CASES: dict[str, list[str | None]] = {
    "no adapters": [None] * CONCURRENCY,
    "none": [None] * CONCURRENCY,
    "one adapter": ["a"] * CONCURRENCY,
    "two adapters": ["a", "b"] * (CONCURRENCY // 2),
}


def tokens_per_s(engine: Engine, adapters: list[str | None], tokens: int, bias: tuple[tuple[int, float], ...]) -> float:
    """Aggregate tokens/s of one request per entry of `adapters`, all started at once, run to their ends."""
    sampling = SamplingParams(temperature=0, max_tokens=tokens, logit_bias=bias)
    started = time.perf_counter()
    for index, adapter in enumerate(adapters):
        prompt = f"{time.perf_counter_ns()}-{index}. {PROMPT}"  # never a cached prefix
        engine.add(f"r{index}", GenerationRequest(prompt=prompt, sampling=sampling, adapter=adapter))
    generated = 0
    while engine.running:
        generated += sum(event.completion_tokens for _, event in engine.step() if isinstance(event, Finished))
    return generated / (time.perf_counter() - started)


def run_cases(plain: Engine, loaded: Engine, end_tokens: list[int], tokens: int, rounds: int) -> dict[str, Any]:
    bias = tuple((token, -100.0) for token in end_tokens)
    names = list(CASES)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for engine in (plain, loaded):  # warm up
        tokens_per_s(engine, [None], 4, bias)
    tokens_per_s(loaded, ["a", "b"], 4, bias)
    for round_index in range(rounds):
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            engine = plain if name == "no adapters" else loaded
            samples[name].append(tokens_per_s(engine, CASES[name], tokens, bias))
        print(f"round {round_index + 1}/{rounds}: " + ", ".join(f"{n} {s[-1]:.1f}" for n, s in samples.items()))
    none = statistics.median(samples["none"])
    return {
        name: {
            "median_tokens_per_s": round(statistics.median(values), 2),
            "ratio_to_none": round(statistics.median(values) / none, 3),
            "median_round_ratio": round(
                statistics.median(v / n for v, n in zip(values, samples["none"], strict=True)), 3
            ),
            "rounds": [round(value, 2) for value in values],
        }
        for name, values in samples.items()
    }


# Steps of 4 sequences (0, 1 on adapter a; 2, 3 on b): each step is a list of (sequences, adapter) decode calls.
WAYS: dict[str, list[list[tuple[tuple[int, ...], str]]]] = {
    "one adapter, one batch": [[((0, 1, 2, 3), "a")]],
    "a batch per adapter, applied first (the engine)": [[((0, 1), "a"), ((2, 3), "b")], [((2, 3), "b"), ((0, 1), "a")]],
    "a batch per adapter, fixed order": [[((0, 1), "a"), ((2, 3), "b")]],
    "one adapter per step, alternating": [[((0, 1), "a")], [((2, 3), "b")]],
}


def llama_ways(gguf: Path, steps: int, rounds: int) -> dict[str, Any]:
    """Decode tokens/s of each way two adapters can share a context's steps (llama.cpp's calls alone)."""
    from warmserve.backends.llama import native

    model = native.load(embedded_model_path(), 4 * 256, 256, 4, threads=1, gpu_layers=0, flash_attn="auto")
    loras = {name: native.load_lora(model, gguf, 1.0) for name in ("a", "b")}
    batch = native.Batch(256)
    samples: dict[str, list[float]] = {name: [] for name in WAYS}
    try:
        for round_index in range(rounds):
            for name in list(WAYS)[round_index % len(WAYS) :] + list(WAYS)[: round_index % len(WAYS)]:
                positions = [0] * 4
                for sequence in range(4):  # a short prompt each, on its own adapter
                    model.forget(sequence)
                    model.use_lora(loras["a" if sequence < 2 else "b"])
                    batch.clear()
                    for position in range(8):
                        batch.add(100 + position, position, sequence, logits=position == 7)
                    model.decode(batch)
                    positions[sequence] = 8
                made, started = 0, time.perf_counter()
                for step in range(steps):
                    for sequences, adapter in WAYS[name][step % len(WAYS[name])]:
                        model.use_lora(loras[adapter])
                        batch.clear()
                        for sequence in sequences:
                            batch.add(200, positions[sequence], sequence, logits=True)
                            positions[sequence] += 1
                        model.decode(batch)
                        made += len(sequences)
                samples[name].append(made / (time.perf_counter() - started))
    finally:
        model.use_lora(None)
        for lora_ in loras.values():
            lora_.free()
        batch.free()
        model.close()
    ours = statistics.median(samples["a batch per adapter, applied first (the engine)"])
    return {
        name: {
            "median_tokens_per_s": round(statistics.median(values), 2),
            "ratio_to_the_engines_way": round(statistics.median(values) / ours, 3),
            "rounds": [round(value, 2) for value in values],
        }
        for name, values in samples.items()
    }


def two_adapters(path: Path) -> list[AdapterSpec]:
    return [AdapterSpec(name="a", path=str(path)), AdapterSpec(name="b", path=str(path))]


def llama_cpp(gguf: Path, tokens: int, rounds: int) -> dict[str, Any]:
    from warmserve.backends.llama.engine import LlamaCppEngine

    spec = ModelSpec(threads=1, n_ctx=512, slots=CONCURRENCY)
    plain = LlamaCppEngine(spec)
    loaded = LlamaCppEngine(spec.model_copy(update={"adapters": two_adapters(gguf)}))
    try:
        for adapter in two_adapters(gguf):
            loaded.add_adapter(adapter)
        vocab = loaded._native.vocab
        end_tokens = [token for token in range(vocab.size) if vocab.is_end_of_generation(token)]
        return run_cases(plain, loaded, end_tokens, tokens, rounds)
    finally:
        plain.close()
        loaded.close()


def transformers(peft: Path, cache: Path, tokens: int, rounds: int) -> dict[str, Any]:
    from warmserve.backends.hf.engine import TransformersEngine

    spec = ModelSpec(backend="transformers", threads=1, n_ctx=512, slots=CONCURRENCY, cache_dir=str(cache))
    plain = TransformersEngine(spec, 0)
    loaded = TransformersEngine(spec, 0)
    try:
        for adapter in two_adapters(peft):
            loaded.add_adapter(adapter)
        return run_cases(plain, loaded, sorted(loaded._eos), tokens, rounds)
    finally:
        plain.close()
        loaded.close()


def build_adapter(work: Path, cache: Path) -> tuple[Path, Path]:
    """The tests' LoRA: trained with PEFT on the converted SmolLM2, and written as a GGUF LoRA."""
    from warmserve.backends.hf.source import converted_gguf

    base = converted_gguf(embedded_model_path(), cache)
    peft = work / "warmy"
    if not (peft / "adapter_config.json").is_file():
        lora.train_warmy(base, peft)
    config = json.loads((base / "config.json").read_text())
    return peft, lora.write_gguf_lora(peft, work / "warmy.gguf", config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64, help="Tokens per llama.cpp request.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hf-tokens", type=int, default=32, help="Tokens per transformers request; 0 skips it.")
    parser.add_argument("--hf-rounds", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, help="Where the adapter is built (default: a temporary folder).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adapters.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work_dir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        cache = work / "cache"
        peft, gguf = build_adapter(work, cache)
        engines = {"llama_cpp": llama_cpp(gguf, args.tokens, args.rounds)}
        ways = llama_ways(gguf, args.tokens, args.rounds)
        if args.hf_tokens:
            engines["transformers"] = transformers(peft, cache, args.hf_tokens, args.hf_rounds)
    result = {
        "what": f"aggregate tokens/s of {CONCURRENCY} requests started together on one engine (4 slots, 1 thread), "
        "greedy, every request exactly the given tokens; median over interleaved rounds and its ratio to "
        "`none` (base requests, adapters loaded) in the same run",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
        "versions": {
            "python": platform.python_version(),
            "llama-cpp-python": version("llama-cpp-python"),
            "torch": version("torch"),
            "transformers": version("transformers"),
            "peft": version("peft"),
        },
        "settings": {
            **vars(args),
            "out": str(args.out),
            "work_dir": str(args.work_dir),
            "threads": 1,
            "concurrency": CONCURRENCY,
            "prompt": PROMPT,
            "adapter": "tests/lora.py: LoRA rank 8 on q_proj, v_proj; loaded twice, as adapters a and b",
        },
        "seconds": round(time.perf_counter() - started, 1),
        "engines": engines,
        "llama_cpp_ways": ways,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for engine, cases in engines.items():
        for name, row in cases.items():
            print(
                f"{engine:12} {name:14} {row['median_tokens_per_s']:7.1f} tok/s  {row['ratio_to_none']:.3f}  "
                f"per round {row['median_round_ratio']:.3f}"
            )
    for name, row in ways.items():
        print(f"way: {name:50} {row['median_tokens_per_s']:7.1f} tok/s  {row['ratio_to_the_engines_way']:.3f}")


if __name__ == "__main__":
    main()
