"""Thin, typed wrappers over llama-cpp-python's low-level (ctypes) API: the only module that calls it.

The batching engine drives one llama.cpp context holding several sequences, and the
embedder a second context on the same weights; these wrappers own the C objects they
need (model, vocab, contexts, batch, sampler chains, LoRA adapters) and turn C conventions
(pointers, buffers, return codes, errors written to the log) into Python values and exceptions.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt
from llguidance import LLTokenizer

from warmserve.backends.logprobs import top_logprobs
from warmserve.errors import BackendError, ModelFileError
from warmserve.generation import SamplingParams, TokenLogprob

# llama.cpp treats this seed as "pick one at random".
RANDOM_SEED = 0xFFFFFFFF
# Mirostat 1 estimates the distribution's shape from this many most likely tokens (llama-server's value).
MIROSTAT_M = 100


def quiet_llama_logs() -> None:
    """llama.cpp logs every tensor while loading; keep only its errors."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


class Vocab:
    """The model's tokenizer as llama.cpp has it."""

    def __init__(self, vocab: Any) -> None:
        self.pointer = vocab
        self.size: int = llama_cpp.llama_vocab_n_tokens(vocab)
        self.adds_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        self.bos: int = llama_cpp.llama_vocab_bos(vocab)
        self.eos: int = llama_cpp.llama_vocab_eos(vocab)

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        data = text.encode()
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(self.pointer, data, len(data), buffer, capacity, add_special, True)
        if count < 0:  # the buffer was too small: -count is the size needed
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(self.pointer, data, len(data), buffer, capacity, add_special, True)
        return list(buffer[:count])

    def piece(self, token: int, special: bool = False) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self.pointer, token, buffer, len(buffer), 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.pointer, token, buffer, len(buffer), 0, special)
        return buffer.raw[:size]

    def special_text(self, token: int) -> str:
        """A special token (BOS, EOS) as text; "" for a model without it (id -1)."""
        return self.piece(token, special=True).decode("utf-8", errors="replace") if token >= 0 else ""

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.pointer, token))

    def fim_tokens(self) -> tuple[int, int, int] | None:
        """The fill-in-the-middle prefix, suffix and middle tokens, if the model has them."""
        tokens = (
            llama_cpp.llama_vocab_fim_pre(self.pointer),
            llama_cpp.llama_vocab_fim_suf(self.pointer),
            llama_cpp.llama_vocab_fim_mid(self.pointer),
        )
        return tokens if all(t >= 0 for t in tokens) else None

    def grammar_tokenizer(self) -> LLTokenizer:
        """llguidance's view of this vocabulary (slow to build: once per engine, see constraints.Grammars)."""
        from llguidance.llamacpp import lltokenizer_from_vocab

        return lltokenizer_from_vocab(self.pointer)


@dataclass
class NativeModel:
    """The weights and the generation context holding every sequence's KV cells."""

    model: Any
    context: Any
    vocab: Vocab
    n_ctx_train: int

    @property
    def n_vocab(self) -> int:
        return self.vocab.size

    def chat_template(self) -> str | None:
        source = llama_cpp.llama_model_chat_template(self.model, None)
        return source.decode() if source else None

    def meta_value(self, key: str) -> str | None:
        """A GGUF metadata value as text, or None when the file does not have the key."""
        buffer = ctypes.create_string_buffer(256)
        size = llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buffer, len(buffer))
        return buffer.value.decode("utf-8", errors="replace") if size >= 0 else None

    @property
    def embedding_size(self) -> int:
        n_embd_out: int = llama_cpp.llama_model_n_embd_out(self.model)
        return n_embd_out if n_embd_out > 0 else int(llama_cpp.llama_model_n_embd(self.model))

    def decode(self, batch: Batch) -> None:
        batch.decode(self.context)

    def forget(self, sequence: int, start: int = 0) -> None:
        """Drop a sequence's KV cells from position `start` on (0: all of them)."""
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self.context), sequence, start, -1)

    def set_threads(self, threads: int) -> None:
        llama_cpp.llama_set_n_threads(self.context, threads, threads)

    def save_sequence(self, sequence: int) -> ctypes.Array[ctypes.c_uint8]:
        """A copy of the sequence's KV cells (with their positions) in host memory, for `restore_sequence`."""
        size: int = llama_cpp.llama_state_seq_get_size(self.context, sequence)
        # Over numpy's uninitialised memory: a ctypes array zero-fills its tens of MB first, which took half of
        # a save's time (benchmarks/state_copy.py). The array keeps the numpy buffer alive.
        blob = (ctypes.c_uint8 * size).from_buffer(np.empty(size, np.uint8).data)
        written = llama_cpp.llama_state_seq_get_data(self.context, blob, size, sequence)
        if written != size:
            raise BackendError(f"llama.cpp saved {written} of {size} bytes of sequence {sequence}")
        return blob

    def restore_sequence(self, sequence: int, blob: ctypes.Array[ctypes.c_uint8]) -> None:
        """Replace the sequence's cells by a saved copy (of this sequence or any other of the context)."""
        if not llama_cpp.llama_state_seq_set_data(self.context, blob, len(blob), sequence):
            self.forget(sequence)
            raise BackendError(f"llama.cpp could not restore {len(blob)} bytes into sequence {sequence}")

    def logits(self, row: int) -> npt.NDArray[np.float32]:
        """Batch row `row`'s logits, in place (masking them changes what is sampled); valid until the next decode."""
        pointer = llama_cpp.llama_get_logits_ith(self.context, row)
        return np.ctypeslib.as_array(pointer, shape=(self.vocab.size,))

    def sample(self, sampler: Sampler, row: int) -> int:
        return int(llama_cpp.llama_sampler_sample(sampler.chain, self.context, row))

    def logprob(self, row: int, token: int, top: int) -> TokenLogprob:
        """The model's log probability of `token` at batch row `row`, and its `top` best alternatives.

        From the raw logits (before temperature, penalties or bias), as OpenAI reports them; valid
        only until the next decode.
        """
        return top_logprobs(self.logits(row), token, top, self.vocab.piece)

    def use_lora(self, adapter: Lora | None) -> None:
        """Apply `adapter` (None: none) to the decodes that follow, for every sequence of the context.

        llama.cpp re-plans its compute graph after a change (measured: about 4 ms for SmolLM2 on a CPU
        thread), and does nothing when the adapter is the one applied already.
        """
        if adapter is None:
            llama_cpp.llama_set_adapters_lora(self.context, None, 0, None)
            return
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter.pointer)
        scales = (ctypes.c_float * 1)(adapter.scale)
        llama_cpp.llama_set_adapters_lora(self.context, adapters, 1, scales)

    def close(self) -> None:
        llama_cpp.llama_free(self.context)
        llama_cpp.llama_model_free(self.model)


@dataclass
class Lora:
    """A GGUF LoRA adapter loaded on the model's weights (which it leaves unchanged)."""

    pointer: Any
    scale: float

    def free(self) -> None:
        """Release it; the context must not apply it any more (`use_lora`)."""
        llama_cpp.llama_adapter_lora_free(self.pointer)


def load_lora(model: NativeModel, path: Path, scale: float) -> Lora:
    """Load a GGUF LoRA for `model`; raises ValueError with llama.cpp's reason when it does not fit (another
    architecture, tensors of other shapes, ranks that disagree, not a LoRA file)."""
    with _logged_errors() as lines:
        pointer = llama_cpp.llama_adapter_lora_init(model.model, str(path).encode())
    if not pointer:
        marker = "failed to apply lora adapter: "
        reasons = [line.split(marker, 1)[1] for line in lines if marker in line]
        raise ValueError(reasons[-1] if reasons else f"llama.cpp could not read {path} as a LoRA adapter")
    return Lora(pointer, scale)


@contextlib.contextmanager
def _logged_errors() -> Iterator[list[str]]:
    """The lines llama.cpp logs meanwhile (it reports a failed load only there), then its usual logging again."""
    lines: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace").strip())

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


_FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}  # llama_flash_attn_type
# Rows of one sequence per micro-batch below which CPU flash attention uses its per-row kernel
# (GGML_FA_TILE_Q is 64 in the llama.cpp that llama-cpp-python 0.3.36 vendors).
FLASH_ATTN_ROW_KERNEL_MAX = 63


def flash_attn_type(flash_attn: str, gpu_layers: int) -> int:
    """`auto` is on for a CPU, where it decodes faster (README; see FLASH_ATTN_ROW_KERNEL_MAX for exactness)."""
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
    with _load_errors() as errors:
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
    if not model:
        raise load_failure(path, errors)
    params = _context_params(n_ctx, n_batch, sequences, threads)
    # Separate KV streams per sequence: batched output then equals solo output exactly.
    params.kv_unified = False
    params.flash_attn_type = flash_attn_type(flash_attn, gpu_layers)
    context = llama_cpp.llama_init_from_model(model, params)
    if not context:
        llama_cpp.llama_model_free(model)
        raise BackendError(f"llama.cpp could not create a context of {n_ctx} tokens for {path}")
    return NativeModel(
        model=model,
        context=context,
        vocab=Vocab(llama_cpp.llama_model_get_vocab(model)),
        n_ctx_train=llama_cpp.llama_model_n_ctx_train(model),
    )


# What llama.cpp logs when a load fails (the only place it says why), and words that mean a lack of
# resources, which may be there on the next try, rather than a file it cannot read.
_LOAD_ERROR = "error loading model: "
_RESOURCES = ("alloc", "memory", "mmap", "resource")


@contextmanager
def _load_errors() -> Iterator[list[str]]:
    """The reasons llama.cpp logs while loading (it returns only NULL); every line still goes to
    llama-cpp-python's own handler, which is the only one again afterwards."""
    from llama_cpp import _logger

    errors: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", errors="replace")
        if _LOAD_ERROR in line:
            errors.append(line.split(_LOAD_ERROR, 1)[1].strip())
        _logger.llama_log_callback(level, text, user_data)

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield errors
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def load_failure(path: Path, errors: Sequence[str]) -> BackendError:
    """Why llama.cpp could not load `path`: permanent (ModelFileError) when the file is the reason."""
    if not errors:
        return BackendError(f"llama.cpp could not load {path}")
    reason = errors[-1]
    if any(word in reason.lower() for word in _RESOURCES):
        return BackendError(f"llama.cpp could not load {path}: {reason}")
    if "unknown model architecture" in reason:
        fix = (
            f"This llama.cpp (llama-cpp-python {llama_cpp.__version__}) does not know that architecture: upgrade "
            "llama-cpp-python, or serve the model with --backend transformers."
        )
    else:
        fix = "The file is incomplete or not a model this llama.cpp reads: download it again, or get a newer GGUF."
    return ModelFileError(f"llama.cpp cannot load {path}: {reason}. {fix}")


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


class Pooling:
    """llama_pooling_type values the embedder chooses between."""

    MODELS_OWN = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED
    NONE = llama_cpp.LLAMA_POOLING_TYPE_NONE  # per-token vectors out
    MEAN = llama_cpp.LLAMA_POOLING_TYPE_MEAN


class EmbeddingContext:
    """A second context on a loaded model that outputs embeddings, sharing its weights.

    One unified KV cache for all its sequences (they are short-lived), and `n_batch` as the
    micro-batch too: llama.cpp pools a sequence only within one micro-batch.
    """

    def __init__(
        self, model: NativeModel, n_ctx: int, n_batch: int, sequences: int, threads: int, pooling: int, flash_attn: int
    ) -> None:
        params = _context_params(n_ctx, n_batch, sequences, threads)
        params.embeddings = True
        params.pooling_type = pooling
        params.kv_unified = True
        params.flash_attn_type = flash_attn
        self._context = llama_cpp.llama_init_from_model(model.model, params)
        if not self._context:
            raise BackendError(f"llama.cpp could not create an embedding context of {n_ctx} tokens")
        self._size = model.embedding_size

    def clear(self) -> None:
        """Forget every sequence's KV cells."""
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._context), True)

    def decode(self, batch: Batch) -> None:
        batch.decode(self._context)

    def pooled(self, sequence: int) -> npt.NDArray[np.float32]:
        """The pooled vector of one sequence of the last batch."""
        vector: npt.NDArray[np.float32] = self._vectors(llama_cpp.llama_get_embeddings_seq(self._context, sequence), 1)[
            0
        ]
        return vector

    def per_token(self, rows: int) -> npt.NDArray[np.float32]:
        """One vector per token of the last batch (pooling NONE)."""
        return self._vectors(llama_cpp.llama_get_embeddings(self._context), rows)

    def free(self) -> None:
        llama_cpp.llama_free(self._context)

    def _vectors(self, pointer: Any, rows: int) -> npt.NDArray[np.float32]:
        if not pointer:
            raise RuntimeError("llama.cpp returned no embeddings")
        return np.ctypeslib.as_array(pointer, shape=(rows, self._size)).astype(np.float32)


class Sampler:
    """One request's sampler chain, in the order SamplingParams describes.

    llama-server's samplers, but with temperature before the ones that narrow the distribution, as
    transformers, vLLM and OpenAI's top_p do, so both backends mean the same by every parameter. The
    repetition penalty and DRY also see the prompt (primed here); presence and frequency penalties,
    OpenAI's, only the output.
    """

    def __init__(self, params: SamplingParams, vocab: Vocab, n_ctx: int, prompt: Sequence[int] = ()) -> None:
        self.chain = chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        n_vocab = vocab.size
        add = llama_cpp.llama_sampler_chain_add
        if params.logit_bias:
            entries = [llama_cpp.llama_logit_bias(token, bias) for token, bias in params.logit_bias]
            biases = (llama_cpp.llama_logit_bias * len(entries))(*entries)
            add(chain, llama_cpp.llama_sampler_init_logit_bias(n_vocab, len(params.logit_bias), biases))
        if params.repetition_penalty != 1.0 and params.repeat_last_n != 0:
            window = _window(params.repeat_last_n, n_ctx)
            repeats = llama_cpp.llama_sampler_init_penalties(n_vocab, window, params.repetition_penalty, 0.0, 0.0)
            _prime(repeats, prompt[-window:])
            add(chain, repeats)
        if params.dry_multiplier > 0 and params.dry_penalty_last_n != 0:
            window = _window(params.dry_penalty_last_n, n_ctx)
            breakers = [text.encode() for text in params.dry_sequence_breakers]
            dry = llama_cpp.llama_sampler_init_dry(
                vocab.pointer,
                params.dry_multiplier,
                params.dry_base,
                params.dry_allowed_length,
                window,
                (ctypes.c_char_p * len(breakers))(*breakers),
                len(breakers),
            )
            _prime(dry, prompt[-window:])
            add(chain, dry)
        if params.presence_penalty or params.frequency_penalty:
            # The window must be explicit: llama.cpp reads -1 as 0, which turns the penalties off.
            penalties = llama_cpp.llama_sampler_init_penalties(
                n_vocab, n_ctx, 1.0, params.frequency_penalty, params.presence_penalty
            )
            add(chain, penalties)
        if params.temperature == 0:
            add(chain, llama_cpp.llama_sampler_init_greedy())
            return
        add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
        seed = RANDOM_SEED if params.seed is None else params.seed % RANDOM_SEED
        if params.mirostat == 1:
            mirostat = llama_cpp.llama_sampler_init_mirostat(
                n_vocab, seed, params.mirostat_tau, params.mirostat_eta, MIROSTAT_M
            )
            add(chain, mirostat)
            return
        if params.mirostat == 2:
            add(chain, llama_cpp.llama_sampler_init_mirostat_v2(seed, params.mirostat_tau, params.mirostat_eta))
            return
        if params.top_k > 0:
            add(chain, llama_cpp.llama_sampler_init_top_k(params.top_k))
        if params.typical_p < 1.0:
            add(chain, llama_cpp.llama_sampler_init_typical(params.typical_p, 1))
        if params.top_p < 1.0:
            add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0.0:
            add(chain, llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        if params.xtc_probability > 0.0:
            add(chain, llama_cpp.llama_sampler_init_xtc(params.xtc_probability, params.xtc_threshold, 1, seed))
        add(chain, llama_cpp.llama_sampler_init_dist(seed))

    def accept(self, token: int) -> None:
        """Count a token drawn elsewhere (a resumed request's), as sampling it here would (penalties)."""
        llama_cpp.llama_sampler_accept(self.chain, token)

    def free(self) -> None:
        llama_cpp.llama_sampler_free(self.chain)


def _window(last_n: int, n_ctx: int) -> int:
    """A penalty's window in tokens: -1 is the whole context."""
    return n_ctx if last_n < 0 else min(last_n, n_ctx)


def _prime(sampler: Any, tokens: Sequence[int]) -> None:
    for token in tokens:
        llama_cpp.llama_sampler_accept(sampler, token)


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
