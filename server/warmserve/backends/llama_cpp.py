"""GGUF models through llama-cpp-python, one sequence at a time.

This engine is serial (capacity 1): the worker queues further requests and admits
the next as soon as one finishes, and llama-cpp-python reuses the KV cache for a
prompt prefix shared with the previous request. Sampling follows OpenAI's meaning
of each parameter: only temperature, top_p and the penalties shape the
distribution (llama.cpp's extra top-k / min-p defaults are switched off), and the
penalties count every token generated so far.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass

import llama_cpp

from warmserve.backends.base import Engine, StepEvents, output_budget
from warmserve.backends.chat_template import ChatTemplate
from warmserve.backends.text import OutputTracker
from warmserve.config import ModelSpec
from warmserve.errors import InvalidRequest
from warmserve.generation import Finished, GenerationRequest, SamplingParams, Started

log = logging.getLogger(__name__)

# llama.cpp treats this seed value as "pick one at random"; user seeds avoid it.
_RANDOM_SEED = 0xFFFFFFFF


@dataclass
class _Sequence:
    request_id: str
    tokens: Generator[int, None, None]
    tracker: OutputTracker


class LlamaCppEngine(Engine):
    capacity = 1

    def __init__(self, spec: ModelSpec, worker_index: int = 0) -> None:
        threads = spec.effective_threads()
        self._llama = llama_cpp.Llama(
            model_path=str(spec.model_file()),
            n_ctx=spec.n_ctx,
            n_batch=min(spec.n_batch, spec.n_ctx),
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=spec.n_gpu_layers,
            last_n_tokens_size=spec.n_ctx,
            verbose=False,
        )
        self._n_ctx = self._llama.n_ctx()
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        bos = self._token_text(self._llama.token_bos())
        eos = self._token_text(self._llama.token_eos())
        self._template = ChatTemplate(self._llama.metadata.get("tokenizer.chat_template"), bos, eos)
        self._active: _Sequence | None = None

    @property
    def running(self) -> int:
        return 0 if self._active is None else 1

    def add(self, request_id: str, request: GenerationRequest) -> Started:
        if self._active is not None:
            raise RuntimeError("serial engine admitted a second request")
        tokens = self.tokenize(request)
        budget = output_budget(len(tokens), request.sampling.max_tokens, self._n_ctx, request.input_param)
        self._active = _Sequence(
            request_id=request_id,
            tokens=self._generate(tokens, request.sampling),
            tracker=OutputTracker(len(tokens), budget, request.sampling.stop),
        )
        return Started(prompt_tokens=len(tokens))

    def step(self) -> StepEvents:
        seq = self._active
        if seq is None:
            return []
        token = next(seq.tokens)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            events = seq.tracker.end_of_generation()
        else:
            events = seq.tracker.push(self._llama.detokenize([token]))
        if events and isinstance(events[-1], Finished):
            self._finish()
        return [(seq.request_id, event) for event in events]

    def cancel(self, request_id: str) -> None:
        if self._active is not None and self._active.request_id == request_id:
            self._finish()

    def close(self) -> None:
        self._finish()
        self._llama.close()

    def _finish(self) -> None:
        if self._active is not None:
            self._active.tokens.close()
            self._active = None

    def tokenize(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            text = self._template.render(request.messages)
            # A template that writes the BOS token itself must not get a second one.
            has_bos = bool(self._template.bos_token) and text.startswith(self._template.bos_token)
            tokens = self._llama.tokenize(text.encode(), add_bos=not has_bos, special=True)
        else:
            assert request.prompt is not None
            tokens = self._llama.tokenize(request.prompt.encode(), add_bos=True, special=True)
        if not tokens:
            raise InvalidRequest("The prompt is empty.", param=request.input_param)
        return tokens

    def _generate(self, tokens: list[int], sampling: SamplingParams) -> Generator[int, None, None]:
        seed = _RANDOM_SEED if sampling.seed is None else sampling.seed % _RANDOM_SEED
        self._llama.set_seed(seed)
        return self._llama.generate(
            tokens,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=1.0,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")
