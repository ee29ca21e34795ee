"""Embeddings from a GGUF model: a second llama.cpp context on the already loaded weights.

The generation context keeps its slots and batches undisturbed; this one is created on
the first embedding request, with `embeddings = true`. How a sequence becomes one vector:

- the GGUF declares a pooling type (embedding models do: BERT, nomic, Qwen3-Embedding):
  llama.cpp pools, and each input is computed whole, in one micro-batch;
- otherwise, for a generative (causal) model such as SmolLM2: mean pooling, which we do
  ourselves from the per-token vectors, so a long input can be computed in pieces across
  batches, its earlier part held in the KV cache like a chunked prefill;
- a non-causal model that declares none: llama.cpp's mean pooling, inputs whole.
"""

from __future__ import annotations

import logging

from warmserve.backends.embedding import EmbeddingJobs, EmbedPiece, Vector
from warmserve.backends.llama import native

log = logging.getLogger(__name__)

SEQUENCES = 64  # inputs computed together in one batch


class LlamaEmbedder:
    def __init__(self, model: native.NativeModel, limit: int, budget: int, threads: int, flash_attn: int) -> None:
        self._model = model
        self.limit = limit  # longest input, in tokens
        self._budget = budget  # tokens per batch
        self._threads = threads
        self._flash_attn = flash_attn
        self.size = model.embedding_size
        arch = model.meta_value("general.architecture") or ""
        declared = model.meta_value(f"{arch}.pooling_type")
        causal = model.meta_value(f"{arch}.attention.causal") not in ("false", "0")
        if declared not in (None, str(native.Pooling.NONE)):
            self._pooling = native.Pooling.MODELS_OWN
        elif causal:
            self._pooling = native.Pooling.NONE  # mean of the token vectors, ours
        else:
            self._pooling = native.Pooling.MEAN
        self.split = self._pooling == native.Pooling.NONE
        self._context: native.EmbeddingContext | None = None
        self._batch: native.Batch | None = None

    def jobs(self) -> EmbeddingJobs:
        return EmbeddingJobs(budget=self._budget, max_pieces=SEQUENCES, split=self.split, padded=False)

    def pieces(self, pieces: list[EmbedPiece]) -> list[Vector]:
        context, batch = self._open()
        if pieces[0].first:  # otherwise sequence 0 goes on from the previous batch
            context.clear()
        batch.clear()
        rows: list[range] = []
        for sequence, piece in enumerate(pieces):
            first = batch.size
            for offset, token in enumerate(piece.tokens):
                batch.add(token, piece.start + offset, sequence, logits=True)
            rows.append(range(first, batch.size))
        try:
            context.decode(batch)
        except Exception:
            context.clear()
            raise
        if not self.split:
            return [context.pooled(sequence) for sequence in range(len(pieces))]
        tokens = context.per_token(batch.size)
        return [tokens[r.start : r.stop].sum(axis=0) for r in rows]

    def close(self) -> None:
        if self._batch is not None:
            self._batch.free()
        if self._context is not None:
            self._context.free()
        self._context = self._batch = None

    def _open(self) -> tuple[native.EmbeddingContext, native.Batch]:
        if self._context is None or self._batch is None:
            # Split inputs: a sequence carried over (up to `limit` tokens) plus one batch.
            n_batch = self._budget if self.split else max(self.limit, self._budget)
            n_ctx = self.limit + self._budget if self.split else n_batch
            log.info("creating the embedding context (%d tokens, pooling %d)", n_ctx, self._pooling)
            self._context = native.EmbeddingContext(
                self._model, n_ctx, n_batch, SEQUENCES, self._threads, self._pooling, self._flash_attn
            )
            self._batch = native.Batch(n_batch)
        return self._context, self._batch
