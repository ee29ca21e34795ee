"""Hugging Face models through transformers, many requests decoded together.

A step loop rather than `model.generate`: each `step` decodes one token for every
running sequence in one batched forward pass over a shared left-padded KV cache
(kv_batch.py), then prefills the requests admitted since the last step, so new
requests join between decode steps and a cancelled one leaves at the next step.
Models whose cache cannot be merged (sliding-window layers) run one at a time.
LoRA adapters (PEFT folders, adapters.py) apply per row, so requests on different adapters and on
the base model decode in the same batch.
Constrained requests mask their own logits row (backends/constraints.py); a reasoning model's
request thinks first, as on llama.cpp (backends/reasoning.py).

Embeddings: embed.py. An embedding-only model (BertModel and the like) loads with
AutoModel and answers no generation.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from warmserve.adapters import AdapterSpec
from warmserve.backends.base import ModelEngine, StepEvents
from warmserve.backends.constraints import Grammars
from warmserve.backends.embedding import EmbedPiece, Vector
from warmserve.backends.hf.adapters import PeftAdapters
from warmserve.backends.hf.embed import HFEmbedder
from warmserve.backends.hf.kv_batch import KVBatch, supports_batching
from warmserve.backends.hf.sampling import TorchSampler
from warmserve.backends.hf.source import model_directory
from warmserve.backends.hf.vocabulary import HFVocabulary
from warmserve.backends.logprobs import top_logprobs
from warmserve.backends.reasoning import Thinking, gated, next_token
from warmserve.backends.text import OutputTracker
from warmserve.backends.tokens import output_budget
from warmserve.config import ModelSpec
from warmserve.errors import BackendError, InvalidRequest, WarmServeError
from warmserve.generation import Failed, Finished, GenerationEvent, GenerationRequest, ModelFacts, Started

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def choose_device(setting: str, worker_index: int) -> torch.device:
    """`auto`: one GPU per worker (round robin) when there are GPUs, else the CPU."""
    if setting != "auto":
        return torch.device(setting)
    if torch.cuda.is_available():
        return torch.device("cuda", worker_index % torch.cuda.device_count())
    return torch.device("cpu")


def choose_dtype(setting: str, device: torch.device) -> torch.dtype:
    if setting != "auto":
        return _DTYPES[setting]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class Detokenizer:
    """Incremental decoding that is exact for byte-level and SentencePiece tokenizers.

    Decoding token by token loses spaces and splits characters, so we decode a short
    window of recent tokens and emit only the new, complete text.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token: int) -> bytes:
        self.ids.append(token)
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before) :].encode()
        return b""

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))


@dataclass
class _Sequence:
    request_id: str
    prompt: list[int]  # what the prefill computes: a resumed request's drawn tokens too
    sampler: TorchSampler
    tracker: OutputTracker
    detokenizer: Detokenizer
    logprobs: int | None = None  # alternatives to report per token; None: no logprobs
    thinking: Thinking | None = None  # a reasoning model's request: where its thinking block is
    adapter: str | None = None  # its LoRA adapter
    length: int = 0  # tokens in the KV cache
    last_token: int = -1
    events: list[GenerationEvent] = field(default_factory=list)
    done: bool = False


class TransformersEngine(ModelEngine):
    def __init__(self, spec: ModelSpec, worker_index: int = 0) -> None:
        torch.set_num_threads(spec.effective_threads())
        self._device = choose_device(spec.device, worker_index)
        dtype = choose_dtype(spec.dtype, self._device)
        directory = model_directory(spec)
        log.info("loading %s on %s as %s", directory, self._device, dtype)
        self._tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=spec.trust_remote_code)
        self._generates = "generate" in spec.effective_tasks()
        loader = AutoModelForCausalLM if self._generates else AutoModel
        model: Any = loader.from_pretrained(directory, dtype=dtype, trust_remote_code=spec.trust_remote_code)
        self._model = model.to(self._device)
        self._model.eval()
        # transformers 5.x renamed `past_key_values` to `cache`; accept both generations.
        self._cache_arg = "cache" if "cache" in inspect.signature(self._model.forward).parameters else "past_key_values"
        limit = getattr(self._model.config, "max_position_embeddings", None) or spec.n_ctx
        self._n_ctx = min(spec.n_ctx, limit)
        self._eos = self._eos_ids() if self._generates else set()
        self._vocab = HFVocabulary(self._tokenizer, int(self._model.config.vocab_size), spec.chat_template_source())
        self._vocab.use_reasoning(spec.reasoning)
        self._embedder = HFEmbedder(
            self._model, self._tokenizer.pad_token_id, self._device, directory, self._n_ctx, spec.n_batch
        )
        head = self._model.get_output_embeddings() if self._generates else None
        n_logits = int(head.weight.shape[0]) if head is not None else self._vocab.size  # padded past the vocab
        self._grammars = Grammars(self._grammar_tokenizer, n_logits)
        self.capacity = spec.slots
        self._batch = KVBatch()
        self._batching = True  # until a model's cache turns out not to be mergeable
        self._rows: list[_Sequence] = []  # in KV-batch row order
        self._new: list[_Sequence] = []  # admitted, not yet prefilled
        self._adapters = PeftAdapters(self._model)

    @property
    def running(self) -> int:
        return len(self._rows) + len(self._new)

    @property
    def facts(self) -> ModelFacts:
        return ModelFacts(
            context_length=self._n_ctx,
            vocab_size=self._vocab.size,
            fill_in_middle=self._vocab.fim is not None,
            reasoning=self._vocab.reasoning is not None,
        )

    def add(self, request_id: str, request: GenerationRequest) -> Started:
        if not self._generates:
            raise InvalidRequest("This model only computes embeddings; it does not generate.", param="model")
        self._vocab.check_logit_bias(request)
        self._adapters.check(request.adapter)
        shaped = self._vocab.prompt(request)
        prompt = shaped.tokens
        budget = output_budget(len(prompt), request.sampling.max_tokens, self._n_ctx, request.input_param)
        with_logprobs = request.sampling.logprobs is not None
        thinking = self._vocab.thinking(shaped, constrained=request.constraint is not None)
        seq = _Sequence(
            request_id=request_id,
            prompt=prompt,
            sampler=TorchSampler(request.draws, gated(self._grammars.constraint(request.constraint), thinking), prompt),
            tracker=OutputTracker(
                len(prompt), budget, request.sampling.stop, with_logprobs=with_logprobs, thinking=thinking
            ),
            detokenizer=Detokenizer(self._tokenizer),
            logprobs=request.sampling.logprobs,
            thinking=thinking,
            adapter=request.adapter,
        )
        if request.resume is not None:  # the tokens a dead worker drew are prefilled after the prompt, and replayed
            drawn = list(request.resume.tokens)
            seq.prompt = prompt + drawn
            pieces = []
            for token in drawn:
                seq.sampler.replay(token)
                pieces.append(seq.detokenizer.push(token))
                if thinking is not None:
                    thinking.accept(token, pieces[-1])
            seq.tracker.replay(request.resume, pieces)
        self._new.append(seq)
        return Started(prompt_tokens=len(prompt), reasoning=shaped.reasoning)

    def cancel(self, request_id: str) -> None:
        self._new = [s for s in self._new if s.request_id != request_id]
        keep = [i for i, s in enumerate(self._rows) if s.request_id != request_id]
        if len(keep) != len(self._rows):
            self._rows = [self._rows[i] for i in keep]
            self._batch.keep(keep)

    def add_adapter(self, adapter: AdapterSpec) -> None:
        if not self._generates:
            raise InvalidRequest(f"The adapter '{adapter.name}' needs a model that generates.", param="name")
        self._adapters.add(adapter)

    def remove_adapter(self, name: str) -> None:
        if any(seq.adapter == name for seq in (*self._rows, *self._new)):
            raise BackendError(f"The adapter '{name}' still has requests running; they must be drained first.")
        self._adapters.remove(name)

    def embed_pieces(self, pieces: list[EmbedPiece]) -> list[Vector]:
        with self._adapters.base_only():
            return super().embed_pieces(pieces)

    @torch.inference_mode()
    def step(self) -> StepEvents:
        if self._rows:
            self._decode()
        if self._new and (not self._rows or self._batching):
            self._prefill(self._new.pop(0))
        events = [(s.request_id, e) for s in self._rows for e in s.events]
        for seq in self._rows:
            seq.events = []
        keep = [i for i, s in enumerate(self._rows) if not s.done]
        if len(keep) != len(self._rows):
            self._rows = [self._rows[i] for i in keep]
            self._batch.keep(keep)
        return events

    # --- internals ----------------------------------------------------------------------

    def _decode(self) -> None:
        rows = self._rows
        input_ids = torch.tensor([[s.last_token] for s in rows], device=self._device)
        positions = torch.tensor([[s.length] for s in rows], device=self._device)
        out = self._adapters.forward(
            [s.adapter for s in rows],
            input_ids=input_ids,
            attention_mask=self._batch.grow(),
            position_ids=positions,
            use_cache=True,
            **{self._cache_arg: self._batch.cache},
        )
        logits = out.logits[:, -1, :]
        for i, seq in enumerate(rows):
            seq.length += 1
            self._accept(seq, logits[i])

    def _prefill(self, seq: _Sequence) -> None:
        input_ids = torch.tensor([seq.prompt], device=self._device)
        out = self._adapters.forward([seq.adapter], input_ids=input_ids, use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        if not supports_batching(cache):
            self._batching = False
        seq.length = len(seq.prompt)
        self._batch.append(cache, seq.length)
        self._rows.append(seq)
        self._accept(seq, out.logits[0, -1, :])

    def _draw(self, seq: _Sequence, logits: torch.Tensor) -> int:
        """The next token: sampled (within the grammar), or the one a thinking block's close forces."""
        token, forced = next_token(seq.thinking, lambda: seq.sampler.sample(logits), self._eos.__contains__)
        if forced:
            seq.sampler.count(token)
        return token

    def _accept(self, seq: _Sequence, logits: torch.Tensor) -> None:
        token = self._draw(seq, logits)
        seq.last_token = token
        if token in self._eos:
            new = seq.tracker.end_of_generation()
        else:
            try:
                seq.sampler.accept(token)
            except WarmServeError as exc:
                seq.events.append(Failed(exc.info()))
                seq.done = True
                return
            logprob = None
            if seq.logprobs is not None:
                row = logits.detach().to("cpu", torch.float32).numpy()
                logprob = top_logprobs(row, token, seq.logprobs, self._piece)
            piece = seq.detokenizer.push(token)
            if seq.thinking is not None:
                seq.thinking.accept(token, piece)
            new = seq.tracker.push(token, piece, logprob)
        seq.events.extend(new)
        seq.done = bool(new) and isinstance(new[-1], Finished)

    def _grammar_tokenizer(self) -> Any:
        from llguidance.hf import from_tokenizer

        try:  # llguidance reads the tokenizer's Rust (fast) form
            tokenizer: Any = self._tokenizer
            return from_tokenizer(tokenizer, eos_token=sorted(self._eos) or None)
        except ValueError as exc:
            raise BackendError(f"Constrained decoding is not available for this tokenizer: {exc}") from exc

    def _piece(self, token: int) -> bytes:
        return str(self._tokenizer.decode([token])).encode()

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for value in (self._model.generation_config.eos_token_id, self._tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list):
                ids.update(value)
        return ids
