"""A deterministic engine for fast tests of the API, pool and clients.

Tokens are whitespace-separated words. The output repeats the prompt's words in
reverse order (shuffled by the seed when temperature > 0), so a test can predict
it exactly. Options add a delay per step and inject faults: a backend error or a
hard crash of the worker process when the prompt contains a marker. A request with a
Constraint follows its grammar (fake_structured.py), so structured output and tool
calls can be tested without a real model.
"""

from __future__ import annotations

import os
import random
import time
import zlib
from dataclasses import dataclass

from warmserve.backends.base import Engine, StepEvents, output_budget
from warmserve.backends.fake_structured import FakeConstrained
from warmserve.backends.text import OutputTracker
from warmserve.config import ModelSpec
from warmserve.errors import BackendError, InvalidRequest
from warmserve.generation import Failed, Finished, GenerationRequest, Started


def render_prompt(request: GenerationRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    return "\n".join(f"{m.role}: {m.content}" for m in request.messages)


def _words(request: GenerationRequest, prompt: str | None = None) -> list[str]:
    """The fake's tokens: the prompt's words; an empty prompt is the request's fault."""
    words = (render_prompt(request) if prompt is None else prompt).split()
    if not words:
        raise InvalidRequest("The prompt is empty.", param=request.input_param)
    return words


@dataclass
class _Sequence:
    words: list[str]
    tracker: OutputTracker
    fail: bool
    crash: bool
    structured: FakeConstrained | None = None


class FakeEngine(Engine):
    def __init__(self, spec: ModelSpec, worker_index: int = 0) -> None:
        self._options = spec.fake
        self._n_ctx = spec.n_ctx
        self.capacity = spec.fake.capacity
        self._running: dict[str, _Sequence] = {}
        time.sleep(self._options.load_delay_s)
        if self._options.crash_on_load:
            os._exit(18)  # dies before it can report anything, as a segfault in a loader would

    @property
    def running(self) -> int:
        return len(self._running)

    def tokenize(self, request: GenerationRequest) -> list[int]:
        return [zlib.crc32(word.encode()) % 50_000 for word in _words(request)]

    def add(self, request_id: str, request: GenerationRequest) -> Started:
        prompt = render_prompt(request)
        prompt_words = _words(request, prompt)
        prompt_tokens = len(prompt_words)
        budget = output_budget(prompt_tokens, request.sampling.max_tokens, self._n_ctx, request.input_param)
        words = list(reversed(prompt_words))
        if request.sampling.temperature > 0:
            random.Random(request.sampling.seed).shuffle(words)
        options = self._options
        self._running[request_id] = _Sequence(
            words=words,
            tracker=OutputTracker(prompt_tokens, budget, request.sampling.stop),
            fail=bool(options.fail_on and options.fail_on in prompt),
            crash=bool(options.crash_on and options.crash_on in prompt),
            structured=FakeConstrained(request.constraint) if request.constraint else None,
        )
        return Started(prompt_tokens=prompt_tokens)

    def step(self) -> StepEvents:
        if self._options.token_delay_s:
            time.sleep(self._options.token_delay_s)
        events: StepEvents = []
        for request_id, seq in list(self._running.items()):
            produced = seq.tracker.completion_tokens
            if seq.crash and produced >= 2:
                os._exit(17)  # a worker dying mid-stream, as a segfault would
            if seq.fail and produced >= 2:
                del self._running[request_id]
                events.append((request_id, Failed(BackendError("injected fault").info())))
                continue
            word = seq.words[produced % len(seq.words)]
            piece: bytes | None = (word if produced == 0 else " " + word).encode()
            if seq.structured is not None:
                piece = seq.structured.next_piece(piece) if piece is not None else None
            new = seq.tracker.end_of_generation() if piece is None else seq.tracker.push(piece)
            events.extend((request_id, event) for event in new)
            if new and isinstance(new[-1], Finished):
                del self._running[request_id]
        return events

    def cancel(self, request_id: str) -> None:
        self._running.pop(request_id, None)
