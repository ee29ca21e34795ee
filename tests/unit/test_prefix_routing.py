"""Naming prompts by prefix blocks in the API process, and choosing a worker by them."""

from __future__ import annotations

from dataclasses import replace

from warmserve.generation import ChatMessage, GenerationRequest, PromptCacheStats
from warmserve.pool.prefix_routing import BLOCK_CHARS, PrefixIndex, PrefixRouter, capacity_blocks, prefix_blocks

SYSTEM = "You are a helpful agent with tools. " * 40  # about 1,400 characters


def chat(*texts: str) -> GenerationRequest:
    roles = ["system", "user", "assistant"]
    return GenerationRequest(messages=tuple(ChatMessage(roles[min(i, 1 + i % 2)], t) for i, t in enumerate(texts)))


def shared(a: list[bytes], b: list[bytes]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_requests_share_blocks_as_far_as_their_inputs_agree():
    one, two = prefix_blocks(chat(SYSTEM, "What time is it? " * 20)), prefix_blocks(chat(SYSTEM, "Who are you? " * 20))
    assert len(SYSTEM) // BLOCK_CHARS - 1 <= shared(one, two) < len(one)
    assert prefix_blocks(chat(SYSTEM, "What time is it? " * 20)) == one  # the same request, the same names


def test_a_conversations_next_turn_extends_its_blocks():
    first = prefix_blocks(chat(SYSTEM, "Hello there, " * 20))
    second = prefix_blocks(chat(SYSTEM, "Hello there, " * 20, "Hi! " * 30, "And now?"))
    assert second[: len(first)] == first
    assert len(second) > len(first)


def test_adapter_tools_and_raw_prompts_name_different_prefixes():
    base = prefix_blocks(chat(SYSTEM, "q"))
    assert shared(base, prefix_blocks(replace(chat(SYSTEM, "q"), adapter="tuned"))) == 0
    assert shared(base, prefix_blocks(replace(chat(SYSTEM, "q"), tools='[{"type": "function"}]'))) == 0
    assert shared(base, prefix_blocks(GenerationRequest(prompt=SYSTEM))) == 0
    tokens = prefix_blocks(GenerationRequest(prompt_tokens=tuple(range(200))))
    assert shared(tokens, prefix_blocks(GenerationRequest(prompt_tokens=(*range(150), 7)))) >= 3


def test_a_short_prompt_has_no_blocks():
    assert prefix_blocks(GenerationRequest(prompt="hi")) == []


def test_the_index_matches_leading_blocks_and_forgets_the_least_recently_used():
    index = PrefixIndex(capacity=4)
    index.add([b"a", b"b", b"c"])
    assert index.match([b"a", b"b", b"x"]) == 2
    assert index.match([b"x"]) == 0
    index.add([b"d", b"e"])  # a is the oldest: dropped
    assert len(index) == 4
    assert index.match([b"a"]) == 0
    assert index.match([b"a", b"b", b"c", b"d"]) == 4  # a chained name stands for all before it


def test_capacity_counts_slots_and_what_the_prompt_cache_holds_at_its_budget():
    assert capacity_blocks(4096, None) == 4096 * 4 // BLOCK_CHARS
    cache = PromptCacheStats(bytes=1_000, tokens=10, budget_bytes=100_000)  # 100 bytes a token: 1,000 tokens
    assert capacity_blocks(4096, cache) == (4096 + 1_000) * 4 // BLOCK_CHARS


class Load:
    def __init__(self, **running: int) -> None:
        self.running = running

    def __call__(self, worker: str) -> int:
        return self.running[worker]

    def key(self, worker: str) -> tuple[int, ...]:
        return (self.running[worker],)


def test_a_request_goes_to_the_worker_holding_its_prefix_within_the_slack():
    router = PrefixRouter(slack=2, slot_tokens=4096)
    blocks = prefix_blocks(chat(SYSTEM, "q1"))
    router.sent("w1", blocks)
    load = Load(w0=0, w1=2)
    assert router.choose(["w0", "w1"], prefix_blocks(chat(SYSTEM, "q2")), load, load.key) == "w1"


def test_a_worker_busier_than_the_slack_allows_loses_the_request_to_the_least_loaded():
    router = PrefixRouter(slack=2, slot_tokens=4096)
    router.sent("w1", prefix_blocks(chat(SYSTEM, "q1")))
    load = Load(w0=0, w1=3)
    assert router.choose(["w0", "w1"], prefix_blocks(chat(SYSTEM, "q2")), load, load.key) == "w0"


def test_the_longest_match_wins_and_no_match_means_least_loaded():
    router = PrefixRouter(slack=8, slot_tokens=4096)
    turn1 = chat(SYSTEM, "Tell me about the sea. " * 10)
    turn2 = chat(SYSTEM, "Tell me about the sea. " * 10, "It is big. " * 20, "More?")
    router.sent("w0", prefix_blocks(chat(SYSTEM, "other")))
    router.sent("w1", prefix_blocks(turn1))
    load = Load(w0=0, w1=1, w2=0)
    assert router.choose(["w0", "w1", "w2"], prefix_blocks(turn2), load, load.key) == "w1"
    unrelated = prefix_blocks(GenerationRequest(prompt="Something else entirely. " * 20))
    assert router.choose(["w0", "w1", "w2"], unrelated, load, load.key) == "w0"
    router.forget("w1")
    assert router.choose(["w0", "w1", "w2"], prefix_blocks(turn2), load, load.key) == "w0"  # only the system prompt
