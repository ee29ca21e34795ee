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
from typing import Any

import llama_cpp
import numpy as np

from warmserve.backends.embedding import EmbeddingJobs, EmbedPiece, Vector, check_input_tokens
from warmserve.backends.llama import native
from warmserve.embedding import EmbedRequest

log = logging.getLogger(__name__)

SEQUENCES = 64  # inputs computed together in one batch


class LlamaEmbedder:
    def __init__(
        self, model: Any, vocab: Any, n_vocab: int, limit: int, budget: int, threads: int, flash_attn: int
    ) -> None:
        self._model = model
        self._vocab = vocab
        self._n_vocab = n_vocab
        self.limit = limit  # longest input, in tokens
        self._budget = budget  # tokens per batch
        self._threads = threads
        self._flash_attn = flash_attn
        n_embd_out = llama_cpp.llama_model_n_embd_out(model)
        self.size: int = n_embd_out if n_embd_out > 0 else llama_cpp.llama_model_n_embd(model)
        arch = native.meta_value(model, "general.architecture") or ""
        declared = native.meta_value(model, f"{arch}.pooling_type")
        causal = native.meta_value(model, f"{arch}.attention.causal") not in ("false", "0")
        if declared not in (None, str(llama_cpp.LLAMA_POOLING_TYPE_NONE)):
            self._pooling = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED  # the model's own
        elif causal:
            self._pooling = llama_cpp.LLAMA_POOLING_TYPE_NONE  # mean of the token vectors, ours
        else:
            self._pooling = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        self.split = self._pooling == llama_cpp.LLAMA_POOLING_TYPE_NONE
        self._context: Any = None
        self._batch: native.Batch | None = None

    def jobs(self) -> EmbeddingJobs:
        return EmbeddingJobs(budget=self._budget, max_pieces=SEQUENCES, split=self.split, padded=False)

    def tokens(self, request: EmbedRequest) -> list[list[int]]:
        inputs = [
            native.tokenize(self._vocab, item, add_special=True) if isinstance(item, str) else list(item)
            for item in request.inputs
        ]
        for index, tokens in enumerate(inputs):
            check_input_tokens(tokens, index, self.limit, self._n_vocab)
        return inputs

    def pieces(self, pieces: list[EmbedPiece]) -> list[Vector]:
        context, batch = self._open()
        memory = llama_cpp.llama_get_memory(context)
        if pieces[0].first:  # otherwise sequence 0 goes on from the previous batch
            llama_cpp.llama_memory_clear(memory, True)
        batch.clear()
        rows: list[range] = []
        for sequence, piece in enumerate(pieces):
            first = batch.size
            for offset, token in enumerate(piece.tokens):
                batch.add(token, piece.start + offset, sequence, logits=True)
            rows.append(range(first, batch.size))
        try:
            batch.decode(context)
        except Exception:
            llama_cpp.llama_memory_clear(memory, True)
            raise
        if not self.split:
            return [self._vector(llama_cpp.llama_get_embeddings_seq(context, s), 1)[0] for s in range(len(pieces))]
        tokens = self._vector(llama_cpp.llama_get_embeddings(context), batch.size)
        return [tokens[r.start : r.stop].sum(axis=0) for r in rows]

    def close(self) -> None:
        if self._batch is not None:
            self._batch.free()
        if self._context is not None:
            llama_cpp.llama_free(self._context)
        self._context = self._batch = None

    def _open(self) -> tuple[Any, native.Batch]:
        if self._context is None or self._batch is None:
            # Split inputs: a sequence carried over (up to `limit` tokens) plus one batch.
            n_batch = self._budget if self.split else max(self.limit, self._budget)
            n_ctx = self.limit + self._budget if self.split else n_batch
            log.info("creating the embedding context (%d tokens, pooling %d)", n_ctx, self._pooling)
            self._context = native.embedding_context(
                self._model, n_ctx, n_batch, SEQUENCES, self._threads, self._pooling, self._flash_attn
            )
            self._batch = native.Batch(n_batch)
        return self._context, self._batch

    def _vector(self, pointer: Any, rows: int) -> Vector:
        if not pointer:
            raise RuntimeError("llama.cpp returned no embeddings")
        return np.ctypeslib.as_array(pointer, shape=(rows, self.size)).astype(np.float32)
