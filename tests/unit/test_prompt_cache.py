"""The prompt cache's index and budget, over opaque blobs (the llama.cpp side: tests/e2e/test_prompt_cache_llama.py)."""

from __future__ import annotations

from warmserve.backends.llama.prompt_cache import PromptCache

SYSTEM = list(range(100, 160))  # a shared system prompt's tokens


def cache(budget: int = 1_000) -> PromptCache[str]:
    return PromptCache(budget)


def test_the_entry_sharing_the_longest_prefix_is_found_with_how_much_it_shares():
    c = cache()
    c.put(None, [*SYSTEM, 1, 2, 3], "first", 10)
    c.put(None, [9, 9, 9, 9], "other", 10)
    found = c.find(None, [*SYSTEM, 1, 2, 7, 7])
    assert found is not None
    assert (found.blob, found.length, found.tokens) == ("first", len(SYSTEM) + 2, len(SYSTEM) + 3)
    assert c.find(None, [5, 5]) is None


def test_a_longer_saved_sequence_serves_a_shorter_prompt_it_begins_with():
    c = cache()
    c.put(None, [*SYSTEM, 1, 2, 3], "long", 10)
    found = c.find(None, SYSTEM[:30])
    assert found is not None
    assert (found.blob, found.length) == ("long", 30)


def test_two_entries_that_part_midway_are_both_found():
    c = cache()
    c.put(None, [*SYSTEM, 1, 2], "a", 10)
    c.put(None, [*SYSTEM, 3, 4], "b", 10)
    a, b = c.find(None, [*SYSTEM, 1, 2, 5]), c.find(None, [*SYSTEM, 3, 4, 5])
    assert a is not None
    assert b is not None
    assert (a.blob, a.length, b.blob, b.length) == ("a", len(SYSTEM) + 2, "b", len(SYSTEM) + 2)
    shared = c.find(None, [*SYSTEM, 8])
    assert shared is not None
    assert shared.length == len(SYSTEM)
    assert len(c) == 2


def test_an_entry_that_begins_a_new_one_is_dropped_and_one_a_saved_entry_covers_is_not_stored():
    c = cache()
    c.put(None, SYSTEM, "short", 10)
    assert c.put(None, [*SYSTEM, 1, 2], "longer", 10)
    assert len(c) == 1
    assert c.bytes == 10
    assert not c.put(None, [*SYSTEM, 1], "covered", 10)
    assert c.covers(None, [*SYSTEM, 1])
    assert not c.covers(None, [*SYSTEM, 2])
    found = c.find(None, SYSTEM)
    assert found is not None
    assert found.blob == "longer"


def test_least_recently_used_entries_are_evicted_to_stay_within_a_tiny_budget():
    c = cache(budget=25)
    c.put(None, [1, 1], "a", 10)
    c.put(None, [2, 2], "b", 10)
    assert c.find(None, [1, 1, 5]) is not None  # a is used: b is now the oldest
    c.put(None, [3, 3], "c", 10)
    assert c.find(None, [2, 2]) is None
    assert {c.find(None, [1, 1]).blob, c.find(None, [3, 3]).blob} == {"a", "c"}  # type: ignore[union-attr]
    stats = c.stats()
    assert (stats.evictions, stats.entries, stats.bytes, stats.tokens, stats.budget_bytes) == (1, 2, 20, 4, 25)


def test_the_budget_is_never_exceeded_and_an_entry_larger_than_it_is_not_stored():
    c = cache(budget=100)
    for i in range(50):
        c.put(None, [i, i, i], f"blob{i}", 30)
        assert c.bytes <= 100
    assert len(c) == 3
    assert not c.put(None, [7, 8, 9], "huge", 101)
    assert c.find(None, [7, 8, 9]) is None


def test_a_zero_budget_turns_the_cache_off():
    c = cache(budget=0)
    assert not c.enabled
    assert not c.put(None, SYSTEM, "x", 1)
    assert c.find(None, SYSTEM) is None
    assert len(c) == 0


def test_entries_are_kept_apart_by_lora_adapter_and_dropped_with_it():
    c = cache()
    c.put("tuned", SYSTEM, "tuned", 10)
    assert c.find(None, SYSTEM) is None
    c.put(None, SYSTEM, "base", 10)
    tuned = c.find("tuned", SYSTEM)
    assert tuned is not None
    assert tuned.blob == "tuned"
    c.drop("tuned")
    assert c.find("tuned", SYSTEM) is None
    base = c.find(None, SYSTEM)
    assert base is not None
    assert base.blob == "base"
    assert (len(c), c.bytes) == (1, 10)


def test_evicting_every_entry_leaves_an_empty_index():
    c = cache(budget=10)
    c.put(None, [*SYSTEM, 1], "a", 10)
    c.put(None, [*SYSTEM, 2], "b", 10)  # evicts a
    c.put(None, [4, 4], "c", 10)  # evicts b
    assert c.find(None, SYSTEM) is None
    assert (len(c), c.bytes, c.stats().evictions) == (1, 10, 2)


def test_the_budget_is_set_in_mib_per_worker_and_defaults_to_a_share_of_free_memory(monkeypatch):
    from warmserve import machine
    from warmserve.cli import build_parser, settings_from_args
    from warmserve.config import ModelSpec

    args = build_parser().parse_args(
        ["serve", "--model", "/m/x.gguf", "--prompt-cache-mib", "0", "--no-prefix-routing"]
    )
    [spec] = settings_from_args(args).models
    assert (spec.prompt_cache_bytes(), spec.prefix_routing) == (0, False)
    assert ModelSpec(backend="fake", prompt_cache_mib=5).prompt_cache_bytes() == 5 << 20
    monkeypatch.setattr(machine, "available_memory_bytes", lambda: 24 << 30)
    assert ModelSpec(backend="fake", workers=2).prompt_cache_bytes() == 3 << 30  # a quarter of 24 GiB, halved
    monkeypatch.setattr(machine, "available_memory_bytes", lambda: 256 << 30)
    assert ModelSpec(backend="fake", workers=2).prompt_cache_bytes() == 4 << 30  # at most 8 GiB in all
