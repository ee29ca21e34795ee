"""GGUF models through llama.cpp, with continuous batching and prompt-prefix reuse.

One llama.cpp context holds `slots` sequences, each with its own KV stream (so a
sequence's output does not depend on its neighbours). Every `step` builds one batch:
the next token of every decoding sequence, then prompt chunks of sequences still
prefilling, up to `n_batch` tokens, so a long prompt never stalls the others. On a
CPU, a step of decoding sequences alone may instead decode each in its own call, and
may run on the cores idle peers lend, when that was measured to be faster
(backends/llama/decode_grouping.py). The
first token of a sequence is sampled right after the chunk holding its last prompt
token. Sequence ids are handed out lowest-first and batches filled in increasing id
order: llama.cpp groups consecutive ids best (measured: consecutive ids ran faster than
scattered ones). So a new request's slot is chosen to keep the ids of each adapter's sequences
(or the base model's) consecutive, and far from other adapters' while it starts a run of its
own: a batch of sequences 0 and 2 cost as much as two batches of one (README, "LoRA adapters").

A finished sequence keeps its KV cells. A new request is placed in the free slot
whose cached tokens share the longest prefix with its prompt (the next turn of a
chat, a shared system prompt) and only the rest is computed; the saved tokens are
reported as `cached_tokens`. Cells count as shared only when the same LoRA adapter (or none)
computed them. Before a slot's cells are dropped for another request they are saved in host memory,
and a request whose prompt begins like a saved sequence gets those cells restored into its slot
(backends/llama/host_cache.py; `prompt_cache_mib`).

LoRA adapters (GGUF) are loaded on the model, but llama.cpp applies them to a whole context,
so a step decodes the sequences of each adapter in a call of their own: one batch per adapter
present, the adapter applied now first (each change re-plans llama.cpp's graph, ~4 ms here, so
alternating the order saves one change per step). Requests on one adapter batch as requests on
none do; the cost of mixing them is in README ("LoRA adapters").

A request resumed from a dead worker (`GenerationRequest.resume`) is placed the same way with
its prompt and the tokens already drawn as its prompt, and those tokens are replayed
through its sampler, grammar and output state before it decodes on.

A request with a Constraint (structured output, tool calls) gets its own grammar
matcher (backends/constraints.py): its logits row is masked before its sampler chain
runs, so constraints are per request whatever shares the batch. A reasoning model's request
follows its thinking block token by token (backends/reasoning.py): its grammar waits until the
block is closed, and once its thinking budget is spent the engine feeds the close instead of
sampling.

A sequence may speculate (backends/llama/speculation.py): its next token and a draft looked up in its
prompt and output go into the step's batch together, and its rows are sampled in order while the model
draws the draft's tokens, so the output is the one plain decoding gives.

Every call into llama.cpp goes through native.py; this module is the scheduling.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from warmserve.adapters import AdapterSpec, adapter_error
from warmserve.backends.base import ModelEngine, StepEvents
from warmserve.backends.constraints import Grammars
from warmserve.backends.llama import native
from warmserve.backends.llama.decode_grouping import DecodeGrouping, DecodeWay
from warmserve.backends.llama.embed import LlamaEmbedder
from warmserve.backends.llama.ggml import loadable_gguf
from warmserve.backends.llama.host_cache import HostCache
from warmserve.backends.llama.slots import Slot, choose_slot, release
from warmserve.backends.llama.speculation import SequenceSpeculation, settings_for, with_counts
from warmserve.backends.llama.tiling import (
    TILE_ROWS,
    Cells,
    rows_until_tiles,
    tile_chunk,
    tiled_end,
)
from warmserve.backends.llama.vocabulary import LlamaVocabulary
from warmserve.backends.reasoning import gated, next_token
from warmserve.backends.text import OutputTracker
from warmserve.backends.tokens import output_budget
from warmserve.config import ModelSpec
from warmserve.errors import BackendError, InvalidRequest, ModelNotFound, WarmServeError
from warmserve.generation import (
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    ModelFacts,
    PromptCacheStats,
    Started,
)

log = logging.getLogger(__name__)

# Prompt tokens per step while idle workers lend their cores: a lender that gets a request of its own
# takes its core back after one such chunk, and chunks this long cost little more than a whole prompt.
_LENT_CHUNK = 16


class LlamaCppEngine(ModelEngine):
    _embedder: LlamaEmbedder

    def __init__(self, spec: ModelSpec, worker_index: int = 0) -> None:
        self.capacity = spec.slots
        self._n_ctx = spec.n_ctx  # per sequence: prompt + output
        n_batch = max(spec.n_batch, spec.slots)
        self._native = native.load(
            loadable_gguf(spec),
            n_ctx=spec.n_ctx * spec.slots,
            n_batch=n_batch,
            sequences=spec.slots,
            threads=spec.effective_threads(),
            gpu_layers=spec.n_gpu_layers,
            flash_attn=spec.flash_attn,
        )
        self._vocab = LlamaVocabulary(self._native, spec.chat_template_source())
        self._vocab.use_reasoning(spec.reasoning)
        # llama.cpp's CPU flash attention runs 64 or more rows of one sequence through a tiled kernel that
        # rounds differently from its per-row kernel: prompts are planned so that a reused prefix computes
        # exactly as in a cold run (backends/llama/tiling.py), per-row chunks of at most 63 tokens.
        cpu_flash = native.flash_attn_type(spec.flash_attn, spec.n_gpu_layers) == 1 and spec.n_gpu_layers == 0
        self._prefill_chunk = native.FLASH_ATTN_ROW_KERNEL_MAX if cpu_flash else n_batch
        self._tiling = cpu_flash and n_batch >= 2 * TILE_ROWS
        # Verify rows match one-token decodes only on the same kernels: CPU flash attention (at most 63 rows
        # of a sequence, as prompt chunks) or a GPU; a CPU without flash attention does not speculate.
        self._speculates = cpu_flash or spec.n_gpu_layers != 0
        self._speculative = spec.speculative
        self._batch = native.Batch(n_batch)
        self._own_threads = spec.effective_threads()
        self._lent_threads = self._own_threads  # own plus the cores idle peers lend now
        self._threads = self._own_threads  # what the context uses now
        self._grouping = DecodeGrouping() if spec.n_gpu_layers == 0 else None  # batching always pays on a GPU
        self._slots = [Slot(i) for i in range(spec.slots)]
        self._host_cache = HostCache(self._native, spec.prompt_cache_bytes())
        self._embedder = LlamaEmbedder(
            self._native,
            limit=min(spec.n_ctx, self._native.n_ctx_train),
            budget=spec.n_batch,
            threads=spec.effective_threads(),
            flash_attn=native.embedding_flash_attn_type(spec.flash_attn, spec.n_gpu_layers),
        )
        self._grammars = Grammars(self._native.vocab.grammar_tokenizer, self._native.n_vocab)
        self._loras: dict[str, native.Lora] = {}
        self._applied: str | None = None  # the adapter the context applies now

    @property
    def running(self) -> int:
        return sum(slot.busy for slot in self._slots)

    @property
    def facts(self) -> ModelFacts:
        return ModelFacts(
            context_length=self._n_ctx,
            vocab_size=self._vocab.size,
            fill_in_middle=self._vocab.fim is not None,
            reasoning=self._vocab.reasoning is not None,
        )

    def add(self, request_id: str, request: GenerationRequest) -> Started:
        self._vocab.check_logit_bias(request)
        shaped = self._vocab.prompt(request)
        prompt = shaped.tokens
        budget = output_budget(len(prompt), request.sampling.max_tokens, self._n_ctx, request.input_param)
        thinking = self._vocab.thinking(shaped, constrained=request.constraint is not None)
        constraint = gated(self._grammars.constraint(request.constraint), thinking)
        if request.adapter is not None and request.adapter not in self._loras:
            raise ModelNotFound(f"The adapter '{request.adapter}' is not loaded here.", param="model")
        drawn = list(request.resume.tokens) if request.resume is not None else []
        tokens = prompt + drawn  # a resumed request prefills what its dead worker had drawn
        # A resumed request's drawn tokens were output rows, so they are computed per row again.
        wanted = Cells(tokens, request.adapter, tiled_end(len(prompt), self._tiling))
        slot, reused = choose_slot(self._slots, wanted)
        # Keep the KV cells it may reuse, drop the rest (at least one token is evaluated, so the first
        # sample has fresh logits).
        others = [(s.sequence, s.cells) for s in self._slots if s is not slot]
        reused = self._host_cache.take_slot(slot.sequence, slot.cells, wanted, reused, others)
        self._native.forget(slot.sequence, reused)
        slot.cached = tokens[:reused]
        slot.pending = tokens[reused:]
        slot.tiled = wanted.tiled
        slot.next_token = None
        slot.request_id = request_id
        slot.adapter = slot.cached_adapter = request.adapter
        slot.sampler = native.Sampler(request.draws, self._native.vocab, self._n_ctx, prompt)
        slot.tracker = OutputTracker(
            len(prompt),
            budget,
            request.sampling.stop,
            cached_tokens=min(reused, len(prompt)),
            with_logprobs=request.sampling.logprobs is not None,
            thinking=thinking,
        )
        slot.logprobs = request.sampling.logprobs
        slot.constraint = constraint
        slot.thinking = thinking
        drafts = settings_for(request.speculative, self._speculative) if self._speculates else None
        slot.speculation = None if drafts is None else SequenceSpeculation(drafts, self._speculative, tokens)
        if request.resume is not None:
            pieces = [self._native.vocab.piece(token) for token in drawn]
            for token, piece in zip(drawn, pieces, strict=True):
                slot.sampler.accept(token)
                if constraint is not None:
                    constraint.accept(token)
                if thinking is not None:
                    thinking.accept(token, piece)
            slot.tracker.replay(request.resume, pieces)
        return Started(len(prompt), min(reused, len(prompt)), shaped.reasoning)

    def step(self) -> StepEvents:
        """Every running sequence advances: in one batch, or one per LoRA adapter when several are in use."""
        groups: dict[str | None, list[Slot]] = {}
        for slot in self._slots:
            if slot.busy:
                groups.setdefault(slot.adapter, []).append(slot)
        events: StepEvents = []
        for adapter in sorted(groups, key=lambda name: name != self._applied):  # no change for the first
            self._apply(adapter)
            events.extend(self._step_group(groups[adapter]))
        return events

    def _step_group(self, busy: list[Slot]) -> StepEvents:
        """One step of sequences that share an adapter (or none): their rows, then their prompts' next tiles."""
        events = self._step_rows(busy)
        return events + self._step_tiles([slot for slot in busy if slot.tiles_pending])

    def _step_rows(self, busy: list[Slot]) -> StepEvents:
        """Decode rows, drafts and per-row prompt chunks."""
        decoding = [slot for slot in busy if slot.next_token is not None]
        prefilling = any(slot.pending and not slot.tiles_pending for slot in busy)
        drafts = self._drafts(decoding)
        if self._grouping is None or prefilling or not decoding:
            return self._step_together(busy, DecodeWay(False, self._own_threads), drafts)
        lent = () if self._lent_threads == self._own_threads else (self._lent_threads,)
        way = self._grouping.choose(len(decoding), (self._own_threads, *lent))
        if drafts:  # a few rows more than a decode step: on the threads measured best for one
            return self._step_together(busy, DecodeWay(False, way.threads), drafts)
        return self._step_each(decoding, way) if way.split else self._step_together(busy, way)

    def _step_together(
        self, busy: list[Slot], way: DecodeWay, drafts: dict[int, list[int]] | None = None
    ) -> StepEvents:
        """One batch: the next token of every decoding sequence (and its draft, by sequence id), then prompt
        chunks while room is left.

        Prompt chunks run on every thread lent; a decode-only step on `way.threads`.
        """
        drafts = drafts or {}
        batch = self._batch
        batch.clear()
        sampling_rows: list[tuple[Slot, int]] = []
        fed: list[tuple[Slot, list[int]]] = []
        prompt_work = False
        # On lent cores, short chunks: a lender that gets a request of its own takes its core back
        # after at most one of them instead of sharing it with a whole prompt's step.
        chunk_limit = self._prefill_chunk if self._lent_threads == self._own_threads else _LENT_CHUNK
        for slot in busy:
            if slot.next_token is not None:
                tokens = [slot.next_token, *drafts.get(slot.sequence, ())]
                row = batch.add(tokens[0], len(slot.cached), slot.sequence, logits=True)
                for offset, token in enumerate(tokens[1:], 1):
                    batch.add(token, len(slot.cached) + offset, slot.sequence, logits=True)
                sampling_rows.append((slot, row))
                fed.append((slot, tokens))
        for slot in busy:
            room = batch.capacity - batch.size
            if not slot.pending or slot.tiles_pending or room == 0:
                continue
            chunk = slot.pending[: min(room, chunk_limit, rows_until_tiles(len(slot.cached), slot.tiled) or room)]
            finishes_prompt = len(chunk) == len(slot.pending)
            start = len(slot.cached)
            for offset, token in enumerate(chunk):
                last = finishes_prompt and offset == len(chunk) - 1
                row = batch.add(token, start + offset, slot.sequence, logits=last)
            if finishes_prompt:
                sampling_rows.append((slot, row))
            fed.append((slot, chunk))
            prompt_work = True
        if not batch.size:
            return []
        # Prompt chunks are compute-bound and always gain from lent cores; for one-token decode steps
        # the threads were chosen by measurement (DecodeGrouping).
        self._use_threads(self._lent_threads if prompt_work else way.threads)
        seconds = self._decode(fed)
        if self._grouping is not None and not prompt_work and not drafts:
            self._grouping.record(len(fed), way, seconds)
        events: StepEvents = []
        for slot, row in sorted(sampling_rows, key=lambda item: item[0].sequence):
            draft = drafts.get(slot.sequence)
            events.extend(self._sample_events(slot, row) if draft is None else self._verify(slot, row, draft))
        return events

    def _step_tiles(self, prefilling: list[Slot]) -> StepEvents:
        """The next tiled chunk of each prompt with tiled rows still to compute, in a decode call of its own
        (tiling.py says why), on every thread lent."""
        events: StepEvents = []
        for slot in prefilling:
            self._use_threads(self._lent_threads)
            batch = self._batch
            batch.clear()
            start = len(slot.cached)
            chunk = slot.pending[: tile_chunk(slot.tiled - start)]
            finishes_prompt = len(chunk) == len(slot.pending)
            for offset, token in enumerate(chunk):
                last = finishes_prompt and offset == len(chunk) - 1
                row = batch.add(token, start + offset, slot.sequence, logits=last)
            self._decode([(slot, chunk)])
            if finishes_prompt:
                events.extend(self._sample_events(slot, row))
        return events

    def _drafts(self, decoding: list[Slot]) -> dict[int, list[int]]:
        """This step's drafts by sequence id: what fits the batch, the sequence's context and its token budget."""
        drafts: dict[int, list[int]] = {}
        room = self._batch.capacity - len(decoding)
        for slot in decoding:
            if slot.speculation is None or slot.tracker is None:
                continue
            left = min(
                slot.tracker.max_tokens - slot.tracker.completion_tokens - 1,  # the next token's own row comes free
                self._n_ctx - len(slot.cached) - 2,
                native.FLASH_ATTN_ROW_KERNEL_MAX - 1,
                room,
            )
            draft = slot.speculation.draft(left, len(decoding))
            if draft:
                drafts[slot.sequence] = draft
                room -= len(draft)
        return drafts

    def _verify(self, slot: Slot, row: int, draft: list[int]) -> StepEvents:
        """Sample the sequence's rows in order while the model draws the draft's tokens (speculation.py says
        why that is plain decoding's output), then drop the KV cells of the draft's rejected tail."""
        speculation = slot.speculation
        assert speculation is not None
        assert slot.request_id is not None
        request_id = slot.request_id
        start = len(slot.cached) - len(draft)  # the first drafted token's position
        accepted = 0
        events: list[GenerationEvent] = []
        for offset in range(len(draft) + 1):
            events.extend(self._sample(slot, row + offset))
            if offset == len(draft) or not slot.busy or slot.next_token != draft[offset]:
                break
            accepted += 1
        speculation.verified(len(draft), accepted)
        keep = start + accepted
        if keep < len(slot.cached):
            self._native.forget(slot.sequence, keep)
            del slot.cached[keep:]
        return [(request_id, event) for event in with_counts(events, speculation)]

    def _step_each(self, decoding: list[Slot], way: DecodeWay) -> StepEvents:
        """The next token of every decoding sequence, one decode call each (see DecodeGrouping)."""
        self._use_threads(way.threads)
        events: StepEvents = []
        seconds = 0.0
        for slot in decoding:
            assert slot.next_token is not None
            self._batch.clear()
            row = self._batch.add(slot.next_token, len(slot.cached), slot.sequence, logits=True)
            seconds += self._decode([(slot, [slot.next_token])])
            events.extend(self._sample_events(slot, row))
        if self._grouping is not None:
            self._grouping.record(len(decoding), way, seconds)
        return events

    def _decode(self, fed: list[tuple[Slot, list[int]]]) -> float:
        """Evaluate the batch, then move the fed tokens from pending to cached; returns the seconds taken."""
        started = time.perf_counter()
        try:
            self._native.decode(self._batch)
        except Exception:
            for slot, _ in fed:  # what reached the cache is unknown: forget these sequences
                self._native.forget(slot.sequence)
                slot.cached = []
            raise
        seconds = time.perf_counter() - started
        for slot, tokens in fed:
            slot.cached.extend(tokens)
            if slot.pending:
                del slot.pending[: len(tokens)]
        return seconds

    def _sample_events(self, slot: Slot, row: int) -> StepEvents:
        assert slot.request_id is not None
        request_id = slot.request_id  # sampling the last token releases the slot
        speculation = slot.speculation
        return [(request_id, event) for event in with_counts(self._sample(slot, row), speculation)]

    def set_threads(self, threads: int) -> None:
        self._lent_threads = threads

    def prompt_cache_stats(self) -> PromptCacheStats | None:
        return self._host_cache.stats() if self._host_cache.enabled else None

    def _use_threads(self, threads: int) -> None:
        if threads != self._threads:
            self._native.set_threads(threads)
            self._threads = threads

    def cancel(self, request_id: str) -> None:
        for slot in self._slots:
            if slot.request_id == request_id:
                release(slot)

    def add_adapter(self, adapter: AdapterSpec) -> None:
        """Load a GGUF LoRA; llama.cpp checks its architecture and every tensor's shape against the model."""
        problem = adapter.file_problem("llama_cpp")
        if problem is None:
            try:
                lora = native.load_lora(self._native, Path(adapter.path).expanduser(), adapter.scale)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            raise InvalidRequest(adapter_error(adapter.name, problem), param="path")
        self.remove_adapter(adapter.name)  # the same name again: the new file replaces the old
        self._loras[adapter.name] = lora

    def remove_adapter(self, name: str) -> None:
        lora = self._loras.get(name)
        if lora is None:
            return
        if any(slot.adapter == name for slot in self._slots if slot.busy):
            raise BackendError(f"The adapter '{name}' still has requests running; they must be drained first.")
        if self._applied == name:
            self._apply(None)
        for slot in self._slots:
            if slot.cached_adapter == name:  # cells no later request may reuse
                self._native.forget(slot.sequence)
                slot.cached, slot.cached_adapter = [], None
        self._host_cache.drop(name)
        del self._loras[name]
        lora.free()

    def close(self) -> None:
        for slot in self._slots:
            release(slot)
        self._apply(None)
        for lora in self._loras.values():
            lora.free()
        self._loras.clear()
        self._host_cache.clear()
        self._embedder.close()
        self._batch.free()
        self._native.close()

    # --- internals ----------------------------------------------------------------------

    def _apply(self, adapter: str | None) -> None:
        """Have the context's decodes from now on run with `adapter` (None: the base model)."""
        if adapter != self._applied:
            self._native.use_lora(None if adapter is None else self._loras[adapter])
            self._applied = adapter

    def _sample(self, slot: Slot, row: int) -> list[GenerationEvent]:
        assert slot.tracker is not None
        assert slot.sampler is not None
        model = self._native
        thinking = slot.thinking
        token = self._draw(slot, row)
        events: list[GenerationEvent]
        if model.vocab.is_end_of_generation(token):
            events = slot.tracker.end_of_generation()
        else:
            try:
                if slot.constraint is not None:
                    slot.constraint.accept(token)
            except WarmServeError as exc:
                release(slot)
                return [Failed(exc.info())]
            logprob = None if slot.logprobs is None else model.logprob(row, token, slot.logprobs)
            piece = model.vocab.piece(token) if logprob is None else logprob.token
            if thinking is not None:
                thinking.accept(token, piece)
            if slot.speculation is not None:
                slot.speculation.push(token)
            events = slot.tracker.push(token, piece, logprob)
        if events and isinstance(events[-1], Finished):
            release(slot)
        else:
            slot.next_token = token
        return events

    def _draw(self, slot: Slot, row: int) -> int:
        """The next token: sampled (within the grammar), or the one a thinking block's close forces."""
        sampler = slot.sampler
        assert sampler is not None

        def sample() -> int:
            if slot.constraint is not None:
                slot.constraint.mask(self._native.logits(row))
            return self._native.sample(sampler, row)

        token, forced = next_token(slot.thinking, sample, self._native.vocab.is_end_of_generation)
        if forced:
            sampler.accept(token)
        return token
