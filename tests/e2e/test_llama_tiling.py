"""Prompts computed in flash attention's tiled kernel on the real SmolLM2 (backends/llama/tiling.py).

First the llama.cpp facts the plan rests on, bitwise; then that requests reusing cells under the plan answer
exactly as cold runs where the plan cuts them: a conversation's next turn, a prompt ending on a tile.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.e2e.test_llama_batching import LONG, chat, run
from warmserve.backends.llama.engine import LlamaCppEngine
from warmserve.backends.llama.tiling import TILE_ROWS, TILED_FROM, tiled_end
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
    tiles_end = len(tokens) - len(tokens) % TILE_ROWS

    def fill(sequence: int, start: int, chunks: list[int]) -> np.ndarray:
        """Feed tokens[start:] in these chunk sizes; the last row's logits."""
        position = start
        for size in chunks:
            batch.clear()
            for offset in range(size):
                batch.add(tokens[position + offset], position + offset, sequence, logits=True)
            model.decode(batch)
            position += size
        assert position == len(tokens)
        return model.logits(batch.size - 1).copy()

    tail = len(tokens) - tiles_end
    for sequence in range(4):
        model.forget(sequence)
    by_64 = fill(0, 0, [TILE_ROWS] * (tiles_end // TILE_ROWS) + [tail])
    by_128 = fill(
        1, 0, [2 * TILE_ROWS] * (tiles_end // (2 * TILE_ROWS)) + [TILE_ROWS] * (tiles_end // TILE_ROWS % 2) + [tail]
    )
    model.forget(2)
    model.restore_sequence(2, model.save_sequence(0))
    model.forget(2, 3 * TILE_ROWS)  # cut inside the tiles, then the rest in tiles again
    restored = fill(2, 3 * TILE_ROWS, [TILE_ROWS] * (tiles_end // TILE_ROWS - 3) + [tail])
    model.forget(3)
    per_row = fill(3, 0, [63] * (len(tokens) // 63) + [len(tokens) % 63])
    assert np.array_equal(by_64, by_128)
    assert np.array_equal(by_64, restored)
    assert not np.array_equal(by_64, per_row)  # the reason for the plan: the kernels round differently
    for sequence in range(4):
        model.forget(sequence)
        native_engine._slots[sequence].cached = []


def test_the_next_turn_of_a_long_conversation_keeps_its_tiles_and_answers_as_a_cold_run():
    """Turn 2 keeps turn 1's cells up to turn 1's tiled end; its answer and output rows are computed again."""
    first = chat(LONG + " Which colour was the grass?", max_tokens=16)
    warm, cold = engine(slots=1), engine(slots=1, prompt_cache_mib=0)
    try:
        answer, done = run(warm, {"t1": first})["t1"]
        second = chat(LONG + " Which colour was the grass?", answer, "And the sky?", max_tokens=24)
        text, reused = run(warm, {"t2": second})["t2"]
        assert done.prompt_tokens % TILE_ROWS != 0
        assert reused.cached_tokens == tiled_end(done.prompt_tokens, True) > 700
        expected, alone = run(cold, {"t2": second})["t2"]
        assert alone.cached_tokens == 0
        assert text == expected
    finally:
        warm.close()
        cold.close()


def tokens_request(tokens: list[int]) -> GenerationRequest:
    return GenerationRequest(prompt_tokens=tuple(tokens), sampling=SamplingParams(temperature=0, max_tokens=24))


def test_a_prompt_ending_on_a_tile_recomputes_its_last_tile_and_answers_as_a_cold_run(native_engine):
    tokens = native_engine._native.vocab.tokenize(LONG, True)
    ends_on_tile = tokens[: 5 * TILE_ROWS]
    warm, cold = engine(slots=1), engine(slots=1, prompt_cache_mib=0)
    try:
        run(warm, {"longer": tokens_request(tokens[: 5 * TILE_ROWS + 10])})
        text, reused = run(warm, {"tile": tokens_request(ends_on_tile)})["tile"]
        assert reused.cached_tokens == 4 * TILE_ROWS  # not 319: the last tile is computed whole
        assert text == run(cold, {"tile": tokens_request(ends_on_tile)})["tile"][0]
    finally:
        warm.close()
        cold.close()


def test_a_short_shared_prefix_below_the_tiles_is_kept_to_the_token():
    tokens = list(range(1000, 1000 + TILED_FROM + 3 * TILE_ROWS))
    first, second = tokens_request(tokens[:100] + [5] * 200), tokens_request(tokens[:100] + [7] * 200)
    eng = engine(slots=1)
    try:
        run(eng, {"a": first})
        assert run(eng, {"b": second})["b"][1].cached_tokens == 100
    finally:
        eng.close()
