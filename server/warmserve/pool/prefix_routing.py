"""Prefix-aware dispatch: a request goes to the worker that likely holds the start of its prompt.

Prompts are tokenized only in workers, so the API process names a prompt by its text: the request's
input, written out canonically (adapter, tools and template options first, then each message, the
prompt text or its token ids), is cut into blocks of `BLOCK_CHARS` characters, and block i is named by
a hash of blocks 0..i. Two requests share block names exactly as far as their inputs agree (to the
block), which is what their rendered prompts share too: chat templates render messages in order, so a
shared system prompt with tools, or a conversation's earlier turns, render to the same leading tokens.

Each worker's `PrefixIndex` remembers the block names of the requests sent to it, the least recently
used dropped beyond what its slots and prompt cache can hold. It is the API process's guess of what the
worker holds (it does not see the worker evict), and a wrong guess only costs speed: the engine finds the
real shared prefix itself. A request goes to the worker whose index matches most blocks, unless that one
runs more than `slack` requests beyond the least loaded one; then, as without a match, to the least loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from warmserve.generation import ChatMessage, GenerationRequest, PromptCacheStats

BLOCK_CHARS = 128
CHARS_PER_TOKEN = 4  # English text in a BPE vocabulary, about; sizes an index from a worker's token capacity
_HASH_BYTES = 16

Worker = TypeVar("Worker", bound=Hashable)


def prefix_blocks(request: GenerationRequest) -> list[bytes]:
    """The chained block hashes of the request's input (see the module docstring)."""
    text = _canonical(request)
    chain = hashlib.blake2b(digest_size=_HASH_BYTES)
    blocks: list[bytes] = []
    for start in range(0, len(text) - BLOCK_CHARS + 1, BLOCK_CHARS):  # whole blocks only
        chain.update(text[start : start + BLOCK_CHARS].encode())
        blocks.append(chain.copy().digest())
    return blocks


def _canonical(request: GenerationRequest) -> str:
    """The input as one string whose prefixes follow the rendered prompt's (what differs up front, first)."""
    kind = "chat" if request.messages is not None else "fim" if request.suffix is not None else "text"
    head = json.dumps([kind, request.adapter, request.tools, request.template_kwargs])
    if request.messages is not None:
        return head + "".join(_message(m) for m in request.messages)
    if request.prompt_tokens is not None:
        return head + "".join(f"{token}," for token in request.prompt_tokens)
    return head + (request.prompt or "")


def _message(message: ChatMessage) -> str:
    calls = json.dumps([[c.id, c.name, c.arguments] for c in message.tool_calls]) if message.tool_calls else ""
    return f"\x1e{message.role}\x1f{message.name or ''}\x1f{message.tool_call_id or ''}\x1f{calls}\x1f{message.content}"


class PrefixIndex:
    """The block names a worker was last sent, least recently used first, at most `capacity` of them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def match(self, blocks: Sequence[bytes]) -> int:
        """How many leading blocks of `blocks` the worker holds (a chained name implies all before it)."""
        for i in range(len(blocks) - 1, -1, -1):
            if blocks[i] in self._blocks:
                return i + 1
        return 0

    def add(self, blocks: Sequence[bytes]) -> None:
        for block in blocks:
            self._blocks[block] = None
            self._blocks.move_to_end(block)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)


def capacity_blocks(slot_tokens: int, cache: PromptCacheStats | None) -> int:
    """Blocks a worker can hold: its slots' tokens, plus what its prompt cache holds at its budget."""
    tokens = slot_tokens
    if cache is not None and cache.tokens and cache.bytes:
        tokens += cache.budget_bytes * cache.tokens // cache.bytes
    return max(1, tokens * CHARS_PER_TOKEN // BLOCK_CHARS)


class PrefixRouter:
    def __init__(self, slack: int, slot_tokens: int) -> None:
        """`slack`: how many more requests than the least loaded worker a worker holding the prefix may run and
        still be chosen; `slot_tokens`: the tokens a worker's slots hold (slots x context)."""
        self.slack = slack
        self._slot_tokens = slot_tokens
        self._indexes: dict[Hashable, PrefixIndex] = {}

    def choose(
        self,
        candidates: Sequence[Worker],
        blocks: Sequence[bytes],
        running: Callable[[Worker], int],
        load: Callable[[Worker], tuple[int, ...]],
    ) -> Worker:
        """The candidate holding the most leading blocks within the slack, else the least loaded (by `load`)."""
        least = min(candidates, key=load)
        if not blocks:
            return least
        matches = {worker: self._index(worker).match(blocks) for worker in candidates}
        longest = max(matches.values())
        if longest == 0:
            return least
        best = min((w for w in candidates if matches[w] == longest), key=load)
        return best if running(best) - running(least) <= self.slack else least

    def sent(self, worker: Hashable, blocks: Sequence[bytes]) -> None:
        """The worker got a request with these blocks: it holds them from now on."""
        self._index(worker).add(blocks)

    def resize(self, worker: Hashable, cache: PromptCacheStats | None) -> None:
        """The worker's prompt cache reported its size: its index holds as much."""
        self._index(worker).capacity = capacity_blocks(self._slot_tokens, cache)

    def forget(self, worker: Hashable) -> None:
        """The worker is gone (a replacement starts empty)."""
        self._indexes.pop(worker, None)

    def _index(self, worker: Hashable) -> PrefixIndex:
        index = self._indexes.get(worker)
        if index is None:
            index = self._indexes[worker] = PrefixIndex(capacity_blocks(self._slot_tokens, None))
        return index
