"""Prompts computed in flash attention's tiled kernel on the real SmolLM2 (backends/llama/tiling.py).

First the llama.cpp facts the plan rests on, bitwise; then that requests reusing cells under the plan answer
exactly as cold runs: a conversation's next turn, the same prompt again.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.e2e.test_llama_batching import LONG, chat, run
from warmserve.backends.llama.engine import LlamaCppEngine
from warmserve.backends.llama.tiling import TILE_ROWS
from warmserve.config import ModelSpec
from warmserve.generation import GenerationRequest, SamplingParams

pytestmark = pytest.mark.e2e


def engine(**fields: object) -> LlamaCppEngine:
    return LlamaCppEngine(ModelSpec(**{"threads": 1, "n_ctx": 2048, "slots": 4, **fields}))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def native_engine() -> Iterator[LlamaCppEngine]:
    eng = engine()
    yield eng
    eng.close()


def test_tile_rows_compute_alike_however_chunked_or_restored_and_unlike_per_row_rows(native_engine):
    model, batch = native_engine._native, native_engine._batch
    tokens = model.vocab.tokenize(LONG, True)[:400]
    end = len(tokens)

    def fill(sequence: int, start: int, chunks: list[int]) -> np.ndarray:
        """Feed tokens[start:] in these chunk sizes; the last row's logits."""
        position = start
        for size in chunks:
            batch.clear()
            for offset in range(size):
                row = batch.add(tokens[position + offset], position + offset, sequence, logits=True)
            model.decode(batch)
            position += size
        assert position == end
        return model.logits(row).copy()

    for sequence in range(4):
        model.forget(sequence)
    by_64 = fill(0, 0, [64, 64, 64, 64, 64, end - 320])
    by_uneven = fill(1, 0, [100, 150, end - 250])
    model.forget(2)
    model.restore_sequence(2, model.save_sequence(0))
    model.forget(2, 211)  # cut at no tile boundary
    restored = fill(2, 211, [end - 211])
    model.forget(3)
    per_row = fill(3, 0, [63] * (end // 63) + [end % 63])
    assert np.array_equal(by_64, by_uneven)
    assert np.array_equal(by_64, restored)
    assert not np.array_equal(by_64, per_row)  # the reason for the plan: the kernels round differently
    for sequence in range(4):
        model.forget(sequence)
        native_engine._slots[sequence].cached = []


def test_the_next_turn_of_a_long_conversation_keeps_the_previous_prompt_and_answers_as_a_cold_run():
    """Turn 2 keeps turn 1's prompt; turn 1's answer, computed per row as output, is computed again in tiles."""
    first = chat(LONG + " Which colour was the grass?", max_tokens=16)
    warm, cold = engine(slots=1), engine(slots=1, prompt_cache_mib=0)
    try:
        answer, done = run(warm, {"t1": first})["t1"]
        second = chat(LONG + " Which colour was the grass?", answer, "And the sky?", max_tokens=24)
        text, reused = run(warm, {"t2": second})["t2"]
        # Turn 1's prompt, unless that leaves turn 2 fewer than 64 rows for its last tiled call.
        assert reused.cached_tokens == min(done.prompt_tokens, reused.prompt_tokens - TILE_ROWS) > 700
        expected, alone = run(cold, {"t2": second})["t2"]
        assert alone.cached_tokens == 0
        assert text == expected
    finally:
        warm.close()
        cold.close()


def tokens_request(tokens: list[int]) -> GenerationRequest:
    return GenerationRequest(prompt_tokens=tuple(tokens), sampling=SamplingParams(temperature=0, max_tokens=24))


def test_the_same_prompt_again_computes_its_last_64_rows_and_answers_as_a_cold_run(native_engine):
    tokens = native_engine._native.vocab.tokenize(LONG, True)
    shorter = tokens[:320]
    warm, cold = engine(slots=1), engine(slots=1, prompt_cache_mib=0)
    try:
        run(warm, {"longer": tokens_request(tokens[:330])})
        assert run(warm, {"first": tokens_request(shorter)})["first"][1].cached_tokens == len(shorter) - TILE_ROWS
        text, reused = run(warm, {"again": tokens_request(shorter)})["again"]
        assert reused.cached_tokens == len(shorter) - TILE_ROWS  # the last decode call holds 64 rows
        assert text == run(cold, {"cold": tokens_request(shorter)})["cold"][0]
    finally:
        warm.close()
        cold.close()


def test_a_short_shared_prefix_below_the_tiles_is_kept_to_the_token():
    tokens = list(range(1000, 1100))
    first, second = tokens_request(tokens + [5] * 200), tokens_request(tokens + [7] * 200)
    eng = engine(slots=1)
    try:
        run(eng, {"a": first})
        assert run(eng, {"b": second})["b"][1].cached_tokens == 100
    finally:
        eng.close()
