"""What constrained decoding costs per token on SmolLM2-135M (49152-token vocab), by library.

Candidates, each on the same JSON schema:
  llama-grammar     llama.cpp's own grammar sampler (GBNF from llama_cpp.llama_grammar's
                    JSON-schema converter) in a sampler chain before greedy
  llguidance-llama  llguidance over the llama.cpp vocab, as warmserve ships it
                    (backends/constraints.py): mask computed per step, applied to the
                    context's logits in place, then the same greedy chain
  llguidance-hf     the same over the HF tokenizer, mask applied to a torch logits row
  xgrammar-hf       xgrammar over the HF tokenizer, mask applied to a torch logits row

The llama.cpp candidates generate with the real model (greedy) and time only the
sampling call (mask + sample + accept), not the forward pass. The HF candidates replay
the token sequence llguidance-llama produced (the two vocabularies are the same ids) so
every candidate walks the same path through the grammar. Compile time is per schema,
cold (no cache). Run:

    python benchmarks/constrained_decoding.py benchmarks/results/constrained-decoding.json [HF_DIR]

HF_DIR: the safetensors folder warmserve converts the GGUF into (its cache_dir/converted/...).
xgrammar is measured when importable (it is not a warmserve dependency).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import llama_cpp

from warmserve.backends.llama import native
from warmserve.config import embedded_model_path
from warmserve.generation import SamplingParams

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "colour": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "colour", "tags", "address"],
    "additionalProperties": False,
}
PROMPT = (
    "<|im_start|>user\nDescribe a person as JSON with name, age, colour, tags and address.<|im_end|>\n"
    "<|im_start|>assistant\n"
)
MAX_TOKENS = 80
N_CTX = 512


def _summary(samples_s: list[float]) -> dict[str, float]:
    us = sorted(s * 1e6 for s in samples_s)
    return {
        "median_us": round(statistics.median(us), 1),
        "p90_us": round(us[int(0.9 * (len(us) - 1))], 1),
        "mean_us": round(statistics.fmean(us), 1),
        "steps": len(us),
    }


class LlamaRun:
    def __init__(self) -> None:
        self.m = native.load(
            embedded_model_path(), n_ctx=N_CTX, n_batch=512, sequences=1, threads=1, gpu_layers=0, flash_attn="off"
        )
        self.batch = native.Batch(512)

    def generate(
        self, chain: Any, before_sample: Any = None, after_sample: Any = None
    ) -> tuple[list[int], list[float]]:
        self.m.forget(0)
        tokens = self.m.vocab.tokenize(PROMPT, add_special=True)
        self.batch.clear()
        for i, t in enumerate(tokens):
            row = self.batch.add(t, i, 0, logits=i == len(tokens) - 1)
        self.batch.decode(self.m.context)
        position, out, times = len(tokens), [], []
        for _ in range(MAX_TOKENS):
            started = time.perf_counter()
            if before_sample is not None:
                before_sample(row)
            token = llama_cpp.llama_sampler_sample(chain, self.m.context, row)
            if after_sample is not None:
                after_sample(token)
            times.append(time.perf_counter() - started)
            if self.m.vocab.is_end_of_generation(token):
                break
            out.append(token)
            self.batch.clear()
            row = self.batch.add(token, position, 0, logits=True)
            self.batch.decode(self.m.context)
            position += 1
        return out, times

    def text(self, tokens: list[int]) -> str:
        return b"".join(self.m.vocab.piece(t) for t in tokens).decode(errors="replace")


def bench_llama_grammar(run: LlamaRun) -> dict[str, Any]:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    started = time.perf_counter()
    gbnf = json_schema_to_gbnf(json.dumps(SCHEMA))
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    grammar = llama_cpp.llama_sampler_init_grammar(run.m.vocab.pointer, gbnf.encode(), b"root")
    compile_s = time.perf_counter() - started
    llama_cpp.llama_sampler_chain_add(chain, grammar)
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    tokens, times = run.generate(chain)
    llama_cpp.llama_sampler_free(chain)
    return {"compile_ms": round(compile_s * 1e3, 2), "per_token": _summary(times), "output": run.text(tokens)}


def bench_unconstrained(run: LlamaRun) -> dict[str, Any]:
    sampler = native.Sampler(SamplingParams(temperature=0), run.m.vocab, N_CTX)
    tokens, times = run.generate(sampler.chain)
    sampler.free()
    return {"per_token": _summary(times), "output": run.text(tokens)}


def _shipped_constraint() -> Any:
    from warmserve.api.grammar import schema_grammar

    return schema_grammar(SCHEMA, "response_format")


def bench_llguidance_llama(run: LlamaRun) -> tuple[dict[str, Any], list[int]]:
    """What warmserve ships: backends/constraints.py over the llama.cpp vocab."""
    from warmserve.backends.constraints import TokenConstraint

    started = time.perf_counter()
    tokenizer = run.m.vocab.grammar_tokenizer()
    tokenizer_s = time.perf_counter() - started
    started = time.perf_counter()
    constraint = TokenConstraint(tokenizer, _shipped_constraint(), run.m.n_vocab)
    compile_s = time.perf_counter() - started

    def mask_logits(row: int) -> None:
        constraint.mask(run.m.logits(row))

    sampler = native.Sampler(SamplingParams(temperature=0), run.m.vocab, N_CTX)
    tokens, times = run.generate(sampler.chain, mask_logits, constraint.accept)
    sampler.free()
    result = {
        "tokenizer_init_ms": round(tokenizer_s * 1e3, 1),
        "compile_ms": round(compile_s * 1e3, 2),
        "per_token": _summary(times),
        "output": run.text(tokens),
    }
    return result, tokens


def bench_llguidance_hf(hf_dir: str, tokens: list[int]) -> dict[str, Any]:
    """What warmserve ships for transformers: the same mask, applied to a torch row."""
    import llguidance.hf
    import torch
    from transformers import AutoTokenizer

    from warmserve.backends.constraints import TokenConstraint

    torch.set_num_threads(1)
    hf = AutoTokenizer.from_pretrained(hf_dir)
    started = time.perf_counter()
    tokenizer = llguidance.hf.from_tokenizer(hf)
    tokenizer_s = time.perf_counter() - started
    started = time.perf_counter()
    constraint = TokenConstraint(tokenizer, _shipped_constraint(), len(hf))
    compile_s = time.perf_counter() - started
    logits = torch.zeros(len(hf))
    times = []
    for token in tokens:
        started = time.perf_counter()
        logits.masked_fill_(~torch.from_numpy(constraint.allowed()), float("-inf"))
        constraint.accept(token)
        times.append(time.perf_counter() - started)
    return {
        "tokenizer_init_ms": round(tokenizer_s * 1e3, 1),
        "compile_ms": round(compile_s * 1e3, 2),
        "per_token": _summary(times),
    }


def bench_xgrammar_hf(hf_dir: str, tokens: list[int]) -> dict[str, Any]:
    import torch
    import xgrammar
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    hf = AutoTokenizer.from_pretrained(hf_dir)
    started = time.perf_counter()
    info = xgrammar.TokenizerInfo.from_huggingface(hf, vocab_size=len(hf))
    compiler = xgrammar.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    tokenizer_s = time.perf_counter() - started
    started = time.perf_counter()
    compiled = compiler.compile_json_schema(json.dumps(SCHEMA), strict_mode=True)
    matcher = xgrammar.GrammarMatcher(compiled)
    compile_s = time.perf_counter() - started
    bitmask = xgrammar.allocate_token_bitmask(1, info.vocab_size)
    logits = torch.zeros(1, info.vocab_size)
    times = []
    for token in tokens:
        started = time.perf_counter()
        matcher.fill_next_token_bitmask(bitmask)
        xgrammar.apply_token_bitmask_inplace(logits, bitmask)
        assert matcher.accept_token(token)
        times.append(time.perf_counter() - started)
    return {
        "tokenizer_init_ms": round(tokenizer_s * 1e3, 1),
        "compile_ms": round(compile_s * 1e3, 2),
        "per_token": _summary(times),
    }


def main() -> None:
    out = Path(sys.argv[1])
    hf_dir = sys.argv[2] if len(sys.argv) > 2 else None
    run = LlamaRun()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.system()}, 1 thread",
        "load_average_at_start": os.getloadavg()[0],
        "model": "SmolLM2-135M-Instruct Q4_1 (49152 tokens)",
        "schema": SCHEMA,
        "unconstrained-greedy": bench_unconstrained(run),
        "llama-grammar": bench_llama_grammar(run),
    }
    results["llguidance-llama"], tokens = bench_llguidance_llama(run)
    if hf_dir:
        results["llguidance-hf"] = bench_llguidance_hf(hf_dir, tokens)
        try:
            results["xgrammar-hf"] = bench_xgrammar_hf(hf_dir, tokens)
        except ImportError as exc:
            results["xgrammar-hf"] = {"skipped": str(exc)}
    out.write_text(json.dumps(results, indent=2) + "\n")
    for name, value in results.items():
        if isinstance(value, dict) and "per_token" in value:
            print(f"{name:22s} {value['per_token']}  compile {value.get('compile_ms')} ms")


if __name__ == "__main__":
    main()
