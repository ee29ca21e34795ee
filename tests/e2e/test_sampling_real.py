"""The sampling extensions change what the real SmolLM2 writes, on llama.cpp and transformers alike.

Engines in this process, one request at a time, short answers: top_k 1 and min_p 1 at temperature 1
are greedy whatever the seed; a repetition penalty (and OpenAI's presence and frequency penalties)
break a repetitive greedy answer; typical_p changes a seeded sample. llama.cpp's own samplers: DRY
cuts a run of repeats short, XTC never draws the likeliest of two or more tokens above its threshold,
and Mirostat with a tiny target surprise is greedy. The transformers engine refuses those three.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from warmserve.backends.base import Engine
from warmserve.config import ModelSpec
from warmserve.errors import UnsupportedParameter
from warmserve.generation import GenerationRequest, SamplingParams, TextDelta, TokenLogprob

pytestmark = pytest.mark.e2e
REPETITIVE = "cat cat cat cat cat cat"  # SmolLM2 goes on with "cat cat cat ..." when greedy, after a preamble
LONG = 24  # tokens enough to see the repeats
OPEN = "Colours: red, green, blue,"  # many likely continuations
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def llama() -> Iterator[Engine]:
    from warmserve.backends.llama.engine import LlamaCppEngine

    engine = LlamaCppEngine(ModelSpec(threads=1, n_ctx=512, slots=1))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def transformers(hf_cache_dir: Path) -> Iterator[Engine]:
    from warmserve.backends.hf.engine import TransformersEngine

    engine = TransformersEngine(ModelSpec(backend="transformers", threads=1, cache_dir=str(hf_cache_dir)), 0)
    yield engine
    engine.close()


@pytest.fixture(params=["llama", "transformers"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def generate(engine: Engine, prompt: str, max_tokens: int = 16, **sampling: Any) -> tuple[str, list[TokenLogprob]]:
    """The text of one completion, run alone to its end, and its tokens' logprobs when asked for."""
    engine.add("r", GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=max_tokens, **sampling)))
    deltas: list[TextDelta] = []
    while engine.running:
        deltas += [event for _, event in engine.step() if isinstance(event, TextDelta)]
    return "".join(d.text for d in deltas), [lp for d in deltas for lp in d.logprobs]


def text(engine: Engine, prompt: str, max_tokens: int = 16, **sampling: Any) -> str:
    return generate(engine, prompt, max_tokens, **sampling)[0]


def longest_run(answer: str, word: str = "cat") -> int:
    """The most times `word` follows itself in `answer`."""
    best = run = 0
    for item in answer.split():
        run = run + 1 if item == word else 0
        best = max(best, run)
    return best


def test_top_k_1_and_min_p_1_at_temperature_1_are_greedy_whatever_the_seed(engine: Engine) -> None:
    greedy = text(engine, OPEN, temperature=0)
    assert any(text(engine, OPEN, temperature=1.0, seed=seed) != greedy for seed in SEEDS)
    for seed in SEEDS:
        assert text(engine, OPEN, temperature=1.0, seed=seed, top_k=1) == greedy
        assert text(engine, OPEN, temperature=1.0, seed=seed, min_p=1.0) == greedy


def test_a_repetition_penalty_breaks_a_repetitive_answer_within_its_window(engine: Engine) -> None:
    greedy = text(engine, REPETITIVE, LONG, temperature=0)
    assert longest_run(greedy) >= 5
    penalised = text(engine, REPETITIVE, LONG, temperature=0, repetition_penalty=1.3)
    assert longest_run(penalised) < 2
    assert text(engine, REPETITIVE, LONG, temperature=0, repetition_penalty=1.3, repeat_last_n=0) == greedy


@pytest.mark.parametrize("penalty", ["presence_penalty", "frequency_penalty"])
def test_openais_penalties_break_a_repetitive_answer(engine: Engine, penalty: str) -> None:
    assert longest_run(text(engine, REPETITIVE, LONG, temperature=0)) >= 5
    assert longest_run(text(engine, REPETITIVE, LONG, temperature=0, **{penalty: 2.0})) < 5


def test_typical_p_changes_a_seeded_sample_which_its_seed_repeats(engine: Engine) -> None:
    typical = [text(engine, OPEN, temperature=1.0, seed=seed, typical_p=0.2) for seed in SEEDS]
    assert typical != [text(engine, OPEN, temperature=1.0, seed=seed) for seed in SEEDS]
    assert text(engine, OPEN, temperature=1.0, seed=SEEDS[0], typical_p=0.2) == typical[0]


def test_dry_cuts_a_run_of_repeats_short(llama: Engine) -> None:
    greedy = text(llama, REPETITIVE, LONG, temperature=0)
    dry = text(llama, REPETITIVE, LONG, temperature=0, dry_multiplier=0.8)
    assert longest_run(dry) < longest_run(greedy)
    assert text(llama, REPETITIVE, LONG, temperature=0, dry_multiplier=0.8, dry_penalty_last_n=0) == greedy


def test_xtc_never_draws_the_likeliest_of_several_tokens_above_its_threshold(llama: Engine) -> None:
    threshold, margin = 0.1, 0.01
    checked = 0
    for seed in SEEDS:
        _, logprobs = generate(
            llama, OPEN, temperature=1.0, seed=seed, xtc_probability=1.0, xtc_threshold=threshold, logprobs=20
        )
        for drawn in logprobs:
            probs = [math.exp(logprob) for _, logprob in drawn.top]
            if any(abs(p - threshold) < margin for p in probs):
                continue  # too near the threshold to tell which side llama.cpp's float arithmetic put it
            above = [p for p in probs if p > threshold]
            if len(above) >= 2:  # XTC keeps only the least likely of these (and what lies below)
                assert math.exp(drawn.logprob) <= min(above) * (1 + 1e-3)
                checked += 1
    assert checked >= 3


@pytest.mark.parametrize("version", [1, 2])
def test_mirostat_with_a_tiny_target_surprise_is_greedy(llama: Engine, version: int) -> None:
    greedy = text(llama, OPEN, temperature=0)
    for seed in SEEDS:
        assert text(llama, OPEN, temperature=1.0, seed=seed, mirostat=version, mirostat_tau=0.01) == greedy
    sampled = text(llama, OPEN, temperature=1.0, seed=SEEDS[0], mirostat=version)
    assert text(llama, OPEN, temperature=1.0, seed=SEEDS[0], mirostat=version) == sampled


@pytest.mark.parametrize(("param", "value"), [("dry_multiplier", 0.8), ("xtc_probability", 0.5), ("mirostat", 2)])
def test_the_transformers_engine_refuses_llama_cpp_samplers(transformers: Engine, param: str, value: float) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        transformers.add("r", GenerationRequest(prompt=OPEN, sampling=SamplingParams(**{param: value})))
    assert info.value.param == param
    assert transformers.running == 0
