"""Saved KV states of token sequences, found by longest shared prefix, bounded in bytes.

A worker's slots hold the KV cells of the last request each ran; when a slot is given to another
request those cells would be lost, so the engine saves them here first (backends/llama/host_cache.py),
and a later request that begins the same way (the next turn of a chat, a shared system prompt with
tool definitions) gets them back in whichever slot it lands.

Entries are whole sequences (llama.cpp saves and restores a sequence's cells as one blob), indexed by a
radix tree over their token ids, one tree per LoRA adapter (cells computed with an adapter are not the
base model's). A lookup walks the query down the tree: every entry below the deepest node it reaches
shares exactly that many tokens with it, and restoring one then cutting it there gives that prefix.
An entry whose tokens begin another's is redundant and dropped; least recently used entries are evicted
while the bytes held exceed the budget. Pure Python over opaque blobs, so it is tested without a model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from warmserve.generation import PromptCacheStats

Blob = TypeVar("Blob")


@dataclass(eq=False)
class _Node(Generic[Blob]):
    edge: tuple[int, ...]  # the tokens from the parent to here
    parent: _Node[Blob] | None
    children: dict[int, _Node[Blob]] = field(default_factory=dict)  # by their edge's first token
    entry: _Entry[Blob] | None = None


@dataclass(eq=False)
class _Entry(Generic[Blob]):
    tokens: tuple[int, ...]
    blob: Blob
    size: int
    node: _Node[Blob]


@dataclass(frozen=True)
class Found(Generic[Blob]):
    """A saved state that shares `length` leading tokens with the query (it may hold more: cut it there)."""

    blob: Blob
    length: int
    tokens: int  # tokens the saved state holds


class PromptCache(Generic[Blob]):
    def __init__(self, budget_bytes: int) -> None:
        """`budget_bytes` 0 turns the cache off: nothing is stored and nothing is found."""
        self.budget = max(0, budget_bytes)
        self._roots: dict[str | None, _Node[Blob]] = {}  # one tree per adapter (None: the base model)
        self._lru: OrderedDict[int, _Entry[Blob]] = OrderedDict()  # by id(entry), oldest first
        self.bytes = 0
        self.tokens = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.restored_tokens = 0

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def __len__(self) -> int:
        return len(self._lru)

    def stats(self) -> PromptCacheStats:
        return PromptCacheStats(
            hits=self.hits,
            misses=self.misses,
            evictions=self.evictions,
            restored_tokens=self.restored_tokens,
            bytes=self.bytes,
            entries=len(self._lru),
            tokens=self.tokens,
            budget_bytes=self.budget,
        )

    def find(self, adapter: str | None, tokens: Sequence[int]) -> Found[Blob] | None:
        """The saved state sharing the longest prefix with `tokens` (the shortest such one), or None."""
        root = self._roots.get(adapter)
        if root is None or not tokens:
            return None
        node, depth = self._walk(root, tokens)
        if depth == 0:
            return None
        while node.entry is None:  # every leaf holds an entry; the first one down is the shortest
            node = next(iter(node.children.values()))
        entry = node.entry
        self._lru.move_to_end(id(entry))
        return Found(entry.blob, depth, len(entry.tokens))

    def covers(self, adapter: str | None, tokens: Sequence[int]) -> bool:
        """Whether a saved state begins with all of `tokens` (saving them again would add nothing)."""
        root = self._roots.get(adapter)
        if root is None:
            return False
        return self._walk(root, tokens)[1] == len(tokens)

    def put(self, adapter: str | None, tokens: Sequence[int], blob: Blob, size: int) -> bool:
        """Save a state of `tokens`; False when it does not fit the budget or a saved one already covers it.

        Saved states that are prefixes of `tokens` are dropped: this one restores them too.
        """
        if not self.enabled or size > self.budget or not tokens or self.covers(adapter, tokens):
            return False
        root = self._roots.setdefault(adapter, _Node((), None))
        node = self._insert(root, tuple(tokens))
        ancestor = node.parent
        while ancestor is not None:
            if ancestor.entry is not None:
                self._remove(ancestor.entry, evicted=False)
            ancestor = ancestor.parent
        entry = _Entry(tuple(tokens), blob, size, node)
        node.entry = entry
        self._lru[id(entry)] = entry
        self.bytes += size
        self.tokens += len(entry.tokens)
        while self.bytes > self.budget:
            _, oldest = next(iter(self._lru.items()))
            self._remove(oldest, evicted=True)
        return True

    def drop(self, adapter: str | None) -> None:
        """Forget every state computed with `adapter` (it was unloaded)."""
        for entry in [e for e in self._lru.values() if self._root_of(e.node) is self._roots.get(adapter)]:
            self._remove(entry, evicted=False)
        self._roots.pop(adapter, None)

    def clear(self) -> None:
        self._roots.clear()
        self._lru.clear()
        self.bytes = self.tokens = 0

    # --- the tree ---------------------------------------------------------------------------

    @staticmethod
    def _walk(root: _Node[Blob], tokens: Sequence[int]) -> tuple[_Node[Blob], int]:
        """The deepest node `tokens` reaches (possibly partway along its edge), and how many tokens matched."""
        node, depth = root, 0
        while depth < len(tokens):
            child = node.children.get(tokens[depth])
            if child is None:
                break
            edge = child.edge
            if tuple(tokens[depth : depth + len(edge)]) == edge:
                node, depth = child, depth + len(edge)
                continue
            matched = 0
            for a, b in zip(edge, tokens[depth:], strict=False):
                if a != b:
                    break
                matched += 1
            return child, depth + matched
        return node, depth

    @staticmethod
    def _insert(root: _Node[Blob], tokens: tuple[int, ...]) -> _Node[Blob]:
        """The node for exactly `tokens`, splitting an edge where they leave it."""
        node, depth = root, 0
        while depth < len(tokens):
            child = node.children.get(tokens[depth])
            if child is None:
                leaf = _Node(tokens[depth:], node)
                node.children[tokens[depth]] = leaf
                return leaf
            edge = child.edge
            matched = 0
            for a, b in zip(edge, tokens[depth:], strict=False):
                if a != b:
                    break
                matched += 1
            if matched < len(edge):  # split: a new node where the two part
                middle = _Node(edge[:matched], node)
                node.children[tokens[depth]] = middle
                child.edge = edge[matched:]
                child.parent = middle
                middle.children[child.edge[0]] = child
                child = middle
            node, depth = child, depth + matched
        return node

    def _remove(self, entry: _Entry[Blob], evicted: bool) -> None:
        del self._lru[id(entry)]
        self.bytes -= entry.size
        self.tokens -= len(entry.tokens)
        if evicted:
            self.evictions += 1
        node = entry.node
        node.entry = None
        while node.parent is not None and node.entry is None and not node.children:  # prune empty leaves
            del node.parent.children[node.edge[0]]
            node = node.parent

    @staticmethod
    def _root_of(node: _Node[Blob]) -> _Node[Blob]:
        while node.parent is not None:
            node = node.parent
        return node
