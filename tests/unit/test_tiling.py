"""The prompt plan that keeps reused cells computing as a cold run's (backends/llama/tiling.py)."""

from __future__ import annotations

import pytest

from warmserve.backends.llama.tiling import (
    TILE_ROWS,
    TILED_FROM,
    Cells,
    in_tiles,
    keepable,
    reusable,
    rows_until_tiles,
    tile_chunk,
    tiled_end,
)


@pytest.mark.parametrize(
    ("prompt", "end"), [(0, TILED_FROM), (100, TILED_FROM), (191, TILED_FROM), (192, 192), (700, 700), (704, 704)]
)
def test_a_prompt_that_reaches_a_tile_past_tiled_from_is_tiled_from_there_to_its_end(prompt, end):
    assert tiled_end(prompt, tiling=True) == end
    assert tiled_end(prompt, tiling=False) == 0


def test_rows_before_tiled_from_and_past_the_tiled_end_are_per_row():
    assert [in_tiles(p, 700) for p in (0, TILED_FROM - 1, TILED_FROM, 699, 700, 720)] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert rows_until_tiles(100, 700) == TILED_FROM - 100
    assert rows_until_tiles(100, TILED_FROM) is None  # no tiles in this prompt
    assert rows_until_tiles(TILED_FROM, 700) is None
    assert not any(in_tiles(p, 0) for p in range(0, 1000, 50))  # an engine that does not tile


@pytest.mark.parametrize(("left", "chunk"), [(64, 64), (127, 127), (128, 64), (500, 64)])
def test_tiled_rows_go_64_at_a_time_and_never_fewer_than_64_to_a_call(left, chunk):
    assert tile_chunk(left) == chunk
    rows = []
    while left:
        rows.append(tile_chunk(left))
        left -= rows[-1]
    assert min(rows) >= TILE_ROWS


def test_a_conversations_next_turn_keeps_the_previous_prompt_and_computes_its_answer_again():
    turn1 = list(range(724))  # a 700-token prompt and its 24-token answer
    turn2 = [*turn1, *range(5000, 5200)]
    held = Cells(turn1, None, tiled_end(700, True))
    assert reusable(held, Cells(turn2, None, tiled_end(len(turn2), True)), len(turn2) - 1) == 700


def test_the_same_prompt_again_computes_its_last_64_rows_in_one_tiled_call():
    prompt = list(range(700))
    held = Cells([*prompt, 9, 9, 9], None, 700)
    assert reusable(held, Cells(prompt, None, 700), len(prompt) - 1) == 700 - TILE_ROWS


def test_a_shorter_request_keeps_the_cells_both_plans_tile_leaving_it_64_tiled_rows():
    held = Cells(list(range(1000)), None, 1000)
    assert reusable(held, Cells(list(range(700)), None, 700), 699) == 700 - TILE_ROWS
    assert reusable(held, Cells([*range(700), *range(5000, 5100)], None, 800), 799) == 700
    assert reusable(held, Cells([*range(700), *range(5000, 5010)], None, 710), 709) == 710 - TILE_ROWS


def test_a_held_prompt_without_tiles_keeps_only_what_lies_below_tiled_from():
    assert keepable(150, TILED_FROM, 960) == TILED_FROM  # its rows 128-149 were per row, the request tiles them
    assert keepable(100, TILED_FROM, 960) == 100
    assert keepable(150, TILED_FROM, TILED_FROM) == 150  # two short prompts: per row alike


def test_another_adapters_cells_are_not_kept_and_an_engine_that_does_not_tile_keeps_every_shared_cell():
    tokens = list(range(900))
    assert reusable(Cells(tokens, "a", 900), Cells(tokens, None, 900), 899) == 0
    assert reusable(Cells(tokens, None, 0), Cells([*tokens[:777], 1], None, 0), 777) == 777
