"""Thin, typed wrappers over llama-cpp-python's low-level (ctypes) API.

The batching engine drives one llama.cpp context holding several sequences; these
helpers own the C objects it needs (model, context, batch, sampler chains) and
turn C conventions (buffers, return codes) into Python values and exceptions.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from warmserve.backends.logprobs import top_logprobs
from warmserve.errors import BackendError
from warmserve.generation import SamplingParams, TokenLogprob

# llama.cpp treats this seed as "pick one at random".
RANDOM_SEED = 0xFFFFFFFF


def quiet_llama_logs() -> None:
    """llama.cpp logs every tensor while loading; keep only its errors."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


@dataclass
class NativeModel:
    model: Any
    context: Any
    vocab: Any
    n_vocab: int
    n_ctx_train: int

    def close(self) -> None:
        llama_cpp.llama_free(self.context)
        llama_cpp.llama_model_free(self.model)


_FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}  # llama_flash_attn_type
# Rows of one sequence per micro-batch below which CPU flash attention uses its per-row kernel
# (GGML_FA_TILE_Q is 64 in the llama.cpp that llama-cpp-python 0.3.36 vendors).
FLASH_ATTN_ROW_KERNEL_MAX = 63


def flash_attn_type(flash_attn: str, gpu_layers: int) -> int:
    """`auto` is on for a CPU (7-13 % faster decoding here; see FLASH_ATTN_ROW_KERNEL_MAX for exactness)."""
    if flash_attn == "auto" and gpu_layers == 0:
        flash_attn = "on"
    return _FLASH_ATTN[flash_attn]


def embedding_flash_attn_type(flash_attn: str, gpu_layers: int) -> int:
    """`auto` is off for a CPU's embedding context: its long inputs are computed in pieces, which
    flash attention's kernels would round differently from one whole pass."""
    if flash_attn == "auto" and gpu_layers == 0:
        flash_attn = "off"
    return flash_attn_type(flash_attn, gpu_layers)


def load(
    path: Path, n_ctx: int, n_batch: int, sequences: int, threads: int, gpu_layers: int, flash_attn: str
) -> NativeModel:
    quiet_llama_logs()
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model_params.n_gpu_layers = gpu_layers if gpu_layers >= 0 else 0x7FFFFFFF
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
    if not model:
        raise BackendError(f"llama.cpp could not load {path}")
    params = _context_params(n_ctx, n_batch, sequences, threads)
    # Separate KV streams per sequence: batched output then equals solo output exactly.
    params.kv_unified = False
    params.flash_attn_type = flash_attn_type(flash_attn, gpu_layers)
    context = llama_cpp.llama_init_from_model(model, params)
    if not context:
        llama_cpp.llama_model_free(model)
        raise BackendError(f"llama.cpp could not create a context of {n_ctx} tokens for {path}")
    vocab = llama_cpp.llama_model_get_vocab(model)
    return NativeModel(
        model=model,
        context=context,
        vocab=vocab,
        n_vocab=llama_cpp.llama_vocab_n_tokens(vocab),
        n_ctx_train=llama_cpp.llama_model_n_ctx_train(model),
    )


def _context_params(n_ctx: int, n_batch: int, sequences: int, threads: int) -> Any:
    """Sizes and threads of a context; one micro-batch per batch (`n_ubatch = n_batch`)."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = n_batch
    params.n_ubatch = n_batch
    params.n_seq_max = sequences
    params.n_threads = threads
    params.n_threads_batch = threads
    return params


def embedding_context(
    model: Any, n_ctx: int, n_batch: int, sequences: int, threads: int, pooling: int, flash_attn: int
) -> Any:
    """A second context on a loaded model that outputs embeddings, sharing its weights.

    One unified KV cache for all its sequences (they are short-lived), and `n_batch` as the
    micro-batch too: llama.cpp pools a sequence only within one micro-batch.
    """
    params = _context_params(n_ctx, n_batch, sequences, threads)
    params.embeddings = True
    params.pooling_type = pooling
    params.kv_unified = True
    params.flash_attn_type = flash_attn
    context = llama_cpp.llama_init_from_model(model, params)
    if not context:
        raise BackendError(f"llama.cpp could not create an embedding context of {n_ctx} tokens")
    return context


def meta_value(model: Any, key: str) -> str | None:
    """A GGUF metadata value as text, or None when the file does not have the key."""
    buffer = ctypes.create_string_buffer(256)
    size = llama_cpp.llama_model_meta_val_str(model, key.encode(), buffer, len(buffer))
    return buffer.value.decode("utf-8", errors="replace") if size >= 0 else None


def tokenize(vocab: Any, text: str, add_special: bool) -> list[int]:
    data = text.encode()
    capacity = len(data) + 8
    buffer = (llama_cpp.llama_token * capacity)()
    count = llama_cpp.llama_tokenize(vocab, data, len(data), buffer, capacity, add_special, True)
    if count < 0:  # the buffer was too small: -count is the size needed
        capacity = -count
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(vocab, data, len(data), buffer, capacity, add_special, True)
    return list(buffer[:count])


def piece(vocab: Any, token: int, special: bool = False) -> bytes:
    buffer = ctypes.create_string_buffer(64)
    size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, special)
    if size < 0:
        buffer = ctypes.create_string_buffer(-size)
        size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, special)
    return buffer.raw[:size]


def chat_template(model: Any) -> str | None:
    source = llama_cpp.llama_model_chat_template(model, None)
    return source.decode() if source else None


def sampler_chain(params: SamplingParams, n_vocab: int) -> Any:
    """OpenAI's order: penalties, temperature, then nucleus over the tempered distribution."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = llama_cpp.llama_sampler_chain_add
    if params.logit_bias:
        entries = [llama_cpp.llama_logit_bias(token, bias) for token, bias in params.logit_bias]
        biases = (llama_cpp.llama_logit_bias * len(entries))(*entries)
        add(chain, llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(params.logit_bias), biases))
    if params.presence_penalty or params.frequency_penalty:
        add(
            chain,
            llama_cpp.llama_sampler_init_penalties(n_vocab, -1, 1.0, params.frequency_penalty, params.presence_penalty),
        )
    if params.temperature == 0:
        add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
    if params.top_p < 1.0:
        add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
    seed = RANDOM_SEED if params.seed is None else params.seed % RANDOM_SEED
    add(chain, llama_cpp.llama_sampler_init_dist(seed))
    return chain


def logprob_of(context: Any, vocab: Any, row: int, token: int, top: int) -> TokenLogprob:
    """The model's log probability of `token` at batch row `row`, and its `top` best alternatives.

    From the raw logits (before temperature, penalties or bias), as OpenAI reports them; valid
    only until the next decode.
    """
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(context, row), shape=(n_vocab,))
    return top_logprobs(logits, token, top, lambda t: piece(vocab, t))


def fim_tokens(vocab: Any) -> tuple[int, int, int] | None:
    """The fill-in-the-middle prefix, suffix and middle tokens, if the model has them."""
    tokens = (
        llama_cpp.llama_vocab_fim_pre(vocab),
        llama_cpp.llama_vocab_fim_suf(vocab),
        llama_cpp.llama_vocab_fim_mid(vocab),
    )
    return tokens if all(t >= 0 for t in tokens) else None


class Batch:
    """A reusable llama_batch: each token belongs to one sequence."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._batch = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.size = 0

    def clear(self) -> None:
        self.size = 0

    def add(self, token: int, position: int, sequence: int, logits: bool) -> int:
        """Append a token; returns its index (the row of its logits when `logits`)."""
        index = self.size
        batch = self._batch
        batch.token[index] = token
        batch.pos[index] = position
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = sequence
        batch.logits[index] = logits
        self.size += 1
        return index

    def decode(self, context: Any) -> None:
        self._batch.n_tokens = self.size
        code = llama_cpp.llama_decode(context, self._batch)
        if code != 0:
            reason = {1: "no KV cache room for the batch", 2: "aborted"}.get(code, "error")
            raise BackendError(f"llama_decode failed ({code}: {reason})")

    def free(self) -> None:
        llama_cpp.llama_batch_free(self._batch)
