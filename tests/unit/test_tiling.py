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
    tiled_end,
)


@pytest.mark.parametrize(
    ("prompt", "end"), [(0, TILED_FROM), (100, TILED_FROM), (191, TILED_FROM), (192, 192), (700, 640), (704, 704)]
)
def test_a_prompt_is_tiled_from_tiled_from_to_its_last_whole_tile(prompt, end):
    assert tiled_end(prompt, tiling=True) == end
    assert tiled_end(prompt, tiling=False) == 0


def test_rows_before_tiled_from_and_past_the_tiled_end_are_per_row():
    assert [in_tiles(p, 640) for p in (0, TILED_FROM - 1, TILED_FROM, 639, 640, 700)] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert rows_until_tiles(100, 640) == TILED_FROM - 100
    assert rows_until_tiles(100, TILED_FROM) is None  # no tiles in this prompt
    assert rows_until_tiles(TILED_FROM, 640) is None
    assert not any(in_tiles(p, 0) for p in range(0, 1000, 50))  # an engine that does not tile


def test_a_conversation_keeps_its_cells_up_to_the_tiled_end_both_share_and_recomputes_the_rest():
    # Turn 1: a 700-token prompt (tiled to 640) and its 24-token answer; turn 2 adds 200 tokens (tiled to 896).
    turn1 = list(range(724))
    turn2 = [*turn1, *range(5000, 5200)]
    held = Cells(turn1, None, tiled_end(700, True))
    assert reusable(held, Cells(turn2, None, tiled_end(len(turn2), True)), len(turn2) - 1) == 640


def test_the_same_plan_keeps_every_shared_cell_past_the_tiled_end():
    prompt = list(range(700))
    held = Cells([*prompt, 9, 9, 9], None, 640)
    assert reusable(held, Cells(prompt, None, 640), len(prompt) - 1) == 699


def test_a_shorter_request_keeps_only_whole_tiles_of_a_longer_held_sequence():
    held = Cells(list(range(1000)), None, 960)
    wanted = list(range(700))  # its tiled end is 640: cells 640-699 were tiled but must be per-row
    assert reusable(held, Cells(wanted, None, 640), 699) == 640


def test_a_prefix_inside_the_tiles_is_cut_at_a_tile_boundary_and_one_below_tiled_from_is_kept_whole():
    assert keepable(500, 960, 960) == 448
    assert keepable(100, 960, 960) == 100
    assert keepable(TILED_FROM + 10, 960, 960) == TILED_FROM
    # A held prompt without tiles: its cells past TILED_FROM are per-row, where the request tiles.
    assert keepable(150, TILED_FROM, 960) == TILED_FROM


def test_the_limit_cuts_a_prompt_that_ends_on_a_tile_back_to_the_tile_before():
    prompt = list(range(4 * TILE_ROWS))
    held = Cells(prompt, None, 4 * TILE_ROWS)
    assert reusable(held, Cells(prompt, None, 4 * TILE_ROWS), len(prompt) - 1) == 3 * TILE_ROWS


def test_another_adapters_cells_are_not_kept_and_an_engine_that_does_not_tile_keeps_every_shared_cell():
    tokens = list(range(900))
    assert reusable(Cells(tokens, "a", 896), Cells(tokens, None, 896), 899) == 0
    assert reusable(Cells(tokens, None, 0), Cells([*tokens[:777], 1], None, 0), 777) == 777
