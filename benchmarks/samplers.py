"""What each sampler costs in decode tokens/s, against plain sampling, on both engines.

In process, one request at a time on one thread, the embedded SmolLM2-135M-Instruct (Q4_1 GGUF for
llama.cpp; the same weights dequantized for transformers). Every case samples at temperature 1 with
a seed, and the end-of-generation tokens are biased away (a logit_bias in every case, plain included)
so each request decodes exactly --tokens tokens. The cases run interleaved, in an order rotated each
round, so the machine's noise falls on all of them alike. Decode tokens/s is a request's tokens
after its first over the time of the steps after its first (the prompt is a few tokens). Reported:
the median over rounds per case, its ratio to plain's median, and the median of each round's ratio
to that round's plain (less exposed to a round slowed by other work). Results:
benchmarks/results/samplers.json.

    .venv/bin/python benchmarks/samplers.py --tokens 128 --rounds 5 --hf-tokens 48 --hf-rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from warmserve.backends.base import Engine
from warmserve.config import ModelSpec
from warmserve.generation import Finished, GenerationRequest, SamplingParams

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Once upon a time, in a village by the sea,"
# The extensions at values model cards and llama-server use, and OpenAI's own samplers for reference.
CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "top_p 0.9 (OpenAI)": {"top_p": 0.9},
    "presence_penalty 0.5 (OpenAI)": {"presence_penalty": 0.5},
    "top_k 40": {"top_k": 40},
    "min_p 0.05": {"min_p": 0.05},
    "typical_p 0.9": {"typical_p": 0.9},
    "repetition_penalty 1.1 (whole context)": {"repetition_penalty": 1.1},
    "repetition_penalty 1.1, repeat_last_n 64": {"repetition_penalty": 1.1, "repeat_last_n": 64},
    "DRY 0.8": {"dry_multiplier": 0.8},
    "XTC 0.5 / 0.1": {"xtc_probability": 0.5, "xtc_threshold": 0.1},
    "mirostat 1": {"mirostat": 1},
    "mirostat 2": {"mirostat": 2},
    "Qwen card: top_k 20, top_p 0.8, min_p 0": {"top_k": 20, "top_p": 0.8, "min_p": 0.0},
}
LLAMA_ONLY = ("DRY", "XTC", "mirostat")


def decode_rate(engine: Engine, sampling: SamplingParams) -> float:
    """Decode tokens/s of one request run alone to its end."""
    engine.add("bench", GenerationRequest(prompt=PROMPT, sampling=sampling))
    first, rest, tokens = 0.0, 0.0, 0
    while engine.running:
        started = time.perf_counter()
        events = engine.step()
        elapsed = time.perf_counter() - started
        if first == 0.0:
            first = elapsed
        else:
            rest += elapsed
        tokens += sum(isinstance(event, Finished) and event.completion_tokens for _, event in events)
    return (tokens - 1) / rest


def run_cases(
    engine: Engine, end_tokens: list[int], cases: dict[str, dict[str, Any]], tokens: int, rounds: int
) -> dict[str, Any]:
    bias = tuple((token, -100.0) for token in end_tokens)
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    decode_rate(engine, SamplingParams(max_tokens=8, seed=0, logit_bias=bias))  # warm up
    for round_index in range(rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            sampling = SamplingParams(
                temperature=1.0, seed=round_index, max_tokens=tokens, logit_bias=bias, **cases[name]
            )
            samples[name].append(decode_rate(engine, sampling))
        print(f"round {round_index + 1}/{rounds} done", flush=True)
    plain = statistics.median(samples["plain"])
    return {
        name: {
            "median_tokens_per_s": round(statistics.median(values), 2),
            "ratio_to_plain": round(statistics.median(values) / plain, 3),
            "median_round_ratio": round(
                statistics.median(v / p for v, p in zip(values, samples["plain"], strict=True)), 3
            ),
            "rounds": [round(value, 2) for value in values],
        }
        for name, values in samples.items()
    }


def llama_cpp(tokens: int, rounds: int) -> dict[str, Any]:
    from warmserve.backends.llama.engine import LlamaCppEngine

    engine = LlamaCppEngine(ModelSpec(threads=1, n_ctx=1024, slots=1))
    try:
        vocab = engine._native.vocab
        end_tokens = [token for token in range(vocab.size) if vocab.is_end_of_generation(token)]
        return run_cases(engine, end_tokens, CASES, tokens, rounds)
    finally:
        engine.close()


def transformers(tokens: int, rounds: int) -> dict[str, Any]:
    from warmserve.backends.hf.engine import TransformersEngine

    cases = {name: case for name, case in CASES.items() if not name.startswith(LLAMA_ONLY)}
    with tempfile.TemporaryDirectory() as cache:
        engine = TransformersEngine(ModelSpec(backend="transformers", threads=1, n_ctx=1024, cache_dir=cache), 0)
        try:
            return run_cases(engine, sorted(engine._eos), cases, tokens, rounds)
        finally:
            engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128, help="Tokens per llama.cpp request.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hf-tokens", type=int, default=48, help="Tokens per transformers request; 0 skips it.")
    parser.add_argument("--hf-rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "samplers.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    engines = {"llama_cpp": llama_cpp(args.tokens, args.rounds)}
    if args.hf_tokens:
        engines["transformers"] = transformers(args.hf_tokens, args.hf_rounds)
    result = {
        "what": "decode tokens/s of one request alone, temperature 1, per sampler; median over interleaved rounds "
        "and its ratio to plain sampling (temperature + seeded draw) in the same run",
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
        },
        "settings": {**vars(args), "out": str(args.out), "threads": 1, "prompt": PROMPT},
        "seconds": round(time.perf_counter() - started, 1),
        "engines": engines,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for engine, cases in engines.items():
        for name, row in cases.items():
            print(
                f"{engine:12} {name:42} {row['median_tokens_per_s']:7.1f} tok/s  {row['ratio_to_plain']:.3f}  "
                f"per round {row['median_round_ratio']:.3f}"
            )


if __name__ == "__main__":
    main()
