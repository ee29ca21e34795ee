"""A deterministic engine for fast tests of the API, pool and clients.

Tokens are whitespace-separated words. The output repeats the prompt's words in
reverse order (shuffled by the seed unless sampling is greedy: temperature 0 or top_k 1;
the other samplers are accepted and change nothing), so a test can predict
it exactly. Options add a delay per step and inject faults: a backend error or a
hard crash of the worker process when the prompt contains a marker. A request with a
Constraint follows its grammar (structured.py), so structured output and tool
calls can be tested without a real model.

An adapter (any existing path) puts its name before the output's words, so a test can tell which
adapter answered.

Embeddings are the mean of a fixed pseudo-random vector per token (a text's tokens are
its words), so texts that share words are closer than texts that do not.
"""

from __future__ import annotations

import os
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from warmserve.adapters import AdapterSpec, adapter_error
from warmserve.backends.base import StepEvents, VocabularyEngine
from warmserve.backends.embedding import EmbedPiece, Vector
from warmserve.backends.fake.structured import FakeConstrained
from warmserve.backends.text import OutputTracker
from warmserve.backends.tokens import Prompt, Vocabulary, given_tokens, output_budget
from warmserve.config import ModelSpec
from warmserve.embedding import EmbedRequest
from warmserve.errors import BackendError, InvalidRequest, ModelFileError, ModelNotFound
from warmserve.generation import ChatMessage, Failed, Finished, GenerationRequest, ModelFacts, Started, TokenLogprob
from warmserve.reasoning import ReasoningStart

FAKE_VOCAB_SIZE = 50_000  # a word's token is its hash modulo this
FAKE_EMBED_SIZE = 16


def _word_token(word: str) -> int:
    return zlib.crc32(word.encode()) % FAKE_VOCAB_SIZE


def render_prompt(request: GenerationRequest) -> str:
    if request.prompt_tokens is not None:
        return " ".join(f"<{token}>" for token in request.prompt_tokens)
    if request.prompt is not None:
        return request.prompt if request.suffix is None else f"{request.prompt} {request.suffix}"
    assert request.messages is not None
    return _chat_text(request.messages)


def _chat_text(messages: tuple[ChatMessage, ...]) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in messages)


class _FakeVocabulary(Vocabulary):
    """Words are tokens; ids can only be named, never spelled out; `suffix` is just more words."""

    size = FAKE_VOCAB_SIZE

    def encode(self, text: str, special: bool) -> list[int]:
        return [_word_token(word) for word in text.split()]

    def decode(self, tokens: list[int]) -> str:
        return " ".join(f"<{token}>" for token in tokens)

    template_source = ""  # no template: a fake reasoning model names its markers in its spec

    def single_token(self, text: str) -> bool:
        return False  # every word is a token here, markers too: they prove nothing

    def render(self, messages: tuple[ChatMessage, ...], tools_json: str | None, variables: dict[str, Any]) -> str:
        return _chat_text(messages)

    def encode_chat(self, text: str) -> list[int]:
        return self.encode(text, True)

    def infill(self, request: GenerationRequest) -> list[int]:
        return self.encode(render_prompt(request), False)


def _words(request: GenerationRequest, prompt: str) -> list[str]:
    """The fake's tokens: the prompt's words; an empty prompt is the request's fault."""
    words = prompt.split()
    if not words:
        raise InvalidRequest("The prompt is empty.", param=request.input_param)
    return words


@dataclass
class _Sequence:
    words: list[str]
    tracker: OutputTracker
    fail: bool
    crash: bool
    logprobs: int | None
    structured: FakeConstrained | None = None
    thought: list[bytes] = field(default_factory=list)  # a fake reasoning model's thinking block, before the answer


def _next_piece(seq: _Sequence, produced: int) -> bytes | None:
    """The fake's next output after `produced` tokens; None ends it (a grammar that is complete)."""
    if produced < len(seq.thought):
        return seq.thought[produced]
    produced -= len(seq.thought)
    word = seq.words[produced % len(seq.words)]
    piece = (word if produced == 0 else " " + word).encode()
    return seq.structured.next_piece(piece) if seq.structured is not None else piece


def fake_thought(start: ReasoningStart | None, budget: int | None, words: list[str]) -> list[bytes]:
    """A fake reasoning model thinks the prompt's words in order, as many as its budget allows."""
    if start is None or start.phase == "answer":
        return []
    opened = [start.open.encode()] if start.phase == "start" else []
    thought = [f" {word}".encode() for word in words[: len(words) if budget is None else budget]]
    return [*opened, *thought, f"\n{start.close}\n\n".encode()]


def fake_logprob(piece: bytes, words: list[str], produced: int, top: int) -> TokenLogprob:
    """A made-up but consistent distribution: the emitted word is the likeliest of `top`."""
    alternatives = [piece, *(f" {w}".encode() for w in words if f" {w}".encode() != piece)][:top]
    logprob = -0.1 * (1 + produced % 3)
    return TokenLogprob(piece, logprob, tuple((alt, logprob - i) for i, alt in enumerate(alternatives)))


class FakeEngine(VocabularyEngine):
    def __init__(self, spec: ModelSpec, worker_index: int = 0) -> None:
        self._options = spec.fake
        self._n_ctx = spec.n_ctx
        self.capacity = spec.slots
        self._vocab = _FakeVocabulary()
        self._vocab.use_reasoning(spec.reasoning)
        self._running: dict[str, _Sequence] = {}
        self._adapters: set[str] = set()
        time.sleep(self._options.load_delay_s)
        if self._options.crash_on_load:
            os._exit(18)  # dies before it can report anything, as a segfault in a loader would
        if self._options.fail_on_load is not None:
            raise ModelFileError(self._options.fail_on_load)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def facts(self) -> ModelFacts:
        return ModelFacts(
            context_length=self._n_ctx,
            vocab_size=FAKE_VOCAB_SIZE,
            fill_in_middle=True,
            reasoning=self._vocab.reasoning is not None,
        )

    @property
    def embed_size(self) -> int:
        return FAKE_EMBED_SIZE

    def embed_tokens(self, request: EmbedRequest) -> list[list[int]]:
        return self._vocab.embed_inputs(request, self._n_ctx)

    def embed_pieces(self, pieces: list[EmbedPiece]) -> list[Vector]:
        if self._options.token_delay_s:
            time.sleep(self._options.token_delay_s)
        return [np.mean([_token_vector(t) for t in piece.tokens], axis=0) for piece in pieces]

    def add(self, request_id: str, request: GenerationRequest) -> Started:
        self._vocab.check_logit_bias(request)
        if request.prompt_tokens is not None:
            given_tokens(request, FAKE_VOCAB_SIZE)
        reasoning = self._vocab.chat_prompt(request) if request.messages is not None else Prompt([])
        prompt = render_prompt(request)
        prompt_words = _words(request, prompt)
        prompt_tokens = len(prompt_words)
        budget = output_budget(prompt_tokens, request.sampling.max_tokens, self._n_ctx, request.input_param)
        words = list(reversed(prompt_words))
        if not request.sampling.greedy:
            random.Random(request.sampling.seed).shuffle(words)
        if request.adapter is not None:
            if request.adapter not in self._adapters:
                raise ModelNotFound(f"The adapter '{request.adapter}' is not loaded here.", param="model")
            words.insert(0, request.adapter)
        options = self._options
        seq = _Sequence(
            words=words,
            tracker=OutputTracker(
                prompt_tokens, budget, request.sampling.stop, with_logprobs=request.sampling.logprobs is not None
            ),
            fail=bool(options.fail_on and options.fail_on in prompt),
            crash=bool(options.crash_on and options.crash_on in prompt),
            logprobs=request.sampling.logprobs,
            structured=FakeConstrained(request.constraint) if request.constraint else None,
            thought=fake_thought(reasoning.reasoning, reasoning.budget, prompt_words),
        )
        thinking = self._vocab.thinking(reasoning, constrained=request.constraint is not None)
        seq.tracker.thinking = thinking
        # The fake draws its whole output when a request starts (from its own seed), so a resumed
        # request replays the same tokens and continues exactly as it would have.
        if request.resume is not None:
            pieces = [_next_piece(seq, produced) or b"" for produced in range(len(request.resume.tokens))]
            for token, piece in zip(request.resume.tokens, pieces, strict=True):
                if thinking is not None:
                    thinking.accept(token, piece)
            seq.tracker.replay(request.resume, pieces)
        self._running[request_id] = seq
        return Started(prompt_tokens=prompt_tokens, reasoning=reasoning.reasoning)

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
            piece = _next_piece(seq, produced)
            if piece is None:
                new = seq.tracker.end_of_generation()
            else:
                logprob = None if seq.logprobs is None else fake_logprob(piece, seq.words, produced, seq.logprobs)
                token = _word_token(piece.decode(errors="replace").strip())
                if seq.tracker.thinking is not None:
                    seq.tracker.thinking.accept(token, piece)
                new = seq.tracker.push(token, piece, logprob)
            events.extend((request_id, event) for event in new)
            if new and isinstance(new[-1], Finished):
                del self._running[request_id]
        return events

    def cancel(self, request_id: str) -> None:
        self._running.pop(request_id, None)

    def add_adapter(self, adapter: AdapterSpec) -> None:
        problem = adapter.file_problem("fake")
        if problem is not None:
            raise InvalidRequest(adapter_error(adapter.name, problem), param="path")
        self._adapters.add(adapter.name)

    def remove_adapter(self, name: str) -> None:
        self._adapters.discard(name)


def _token_vector(token: int) -> Vector:
    return np.random.default_rng(token).standard_normal(FAKE_EMBED_SIZE).astype(np.float32)
