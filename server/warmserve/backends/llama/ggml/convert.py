"""An old LLaMA GGML/GGMF/GGJT file as GGUF: names, hyperparameters and vocabulary translated,
tensor data copied as it is (its blocks are what llama.cpp reads today; read.py refuses the rest).

What GGUF wants and the old header lacks is derived or chosen, never guessed silently:
- the feed-forward size from the gate tensor (n_mult's formula misses LLaMA-2 70B's multiplier),
  the key/value head count from the key tensor (70B's grouped-query attention, which llama.cpp's
  own converter needed a `--gqa` flag for);
- the RMS-norm epsilon: 5e-6, the default llama.cpp itself used with these files (LLaMA-1 trained
  with 1e-6, LLaMA-2 with 1e-5), and the training context: 4096 for a file named like LLaMA-2,
  else 2048. Both can be set (`ConversionOptions`, the model spec's `ggml:` block).
The vocabulary goes back to SentencePiece's spelling: the old format stored '▁' as a space,
byte tokens as the bare byte and the control tokens as empty strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from warmserve.backends.llama.ggml.gguf_write import Field, Kind, TensorCopy, write_gguf
from warmserve.backends.llama.ggml.read import GgmlFile, TensorEntry
from warmserve.errors import ModelFileError

DEFAULT_RMS_NORM_EPS = 5e-6
LLAMA_1_CONTEXT = 2048
LLAMA_2_CONTEXT = 4096
QUANTIZATION_VERSION = 2  # of ggml's block formats, as llama.cpp's quantizer records it

# SentencePiece token types, as GGUF numbers them.
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
_SPACE = "\u2581".encode()

_GLOBAL_NAMES = {
    "tok_embeddings.weight": "token_embd.weight",
    "norm.weight": "output_norm.weight",
    "output.weight": "output.weight",  # absent: llama.cpp reuses the token embeddings
}
_LAYER_NAMES = {
    "attention.wq.weight": "attn_q.weight",
    "attention.wk.weight": "attn_k.weight",
    "attention.wv.weight": "attn_v.weight",
    "attention.wo.weight": "attn_output.weight",
    "attention_norm.weight": "attn_norm.weight",
    "feed_forward.w1.weight": "ffn_gate.weight",
    "feed_forward.w2.weight": "ffn_down.weight",
    "feed_forward.w3.weight": "ffn_up.weight",
    "ffn_norm.weight": "ffn_norm.weight",
}
_LAYER = re.compile(r"layers\.(\d+)\.(.+)")
_LLAMA_2_NAME = re.compile(r"llama[-_ ]?2", re.IGNORECASE)


@dataclass(frozen=True)
class ConversionOptions:
    """What the old header does not record; None: the defaults in the module docstring."""

    context_length: int | None = None
    rms_norm_eps: float | None = None


@dataclass(frozen=True)
class LlamaShape:
    """The hyperparameters GGUF needs, from the header and the tensors' shapes."""

    n_ff: int
    n_head_kv: int
    context_length: int
    rms_norm_eps: float


def gguf_name(name: str) -> str | None:
    """The GGUF name of an old LLaMA tensor name; None if it is not one."""
    if name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[name]
    match = _LAYER.fullmatch(name)
    if match and match.group(2) in _LAYER_NAMES:
        return f"blk.{int(match.group(1))}.{_LAYER_NAMES[match.group(2)]}"
    return None


def write_converted(model: GgmlFile, out: BinaryIO, options: ConversionOptions) -> None:
    """Write `model` as GGUF to `out` (unbuffered), reading tensor data from its file."""
    tensors = _mapped_tensors(model)
    shape = llama_shape(model, options)
    with model.path.open("rb", buffering=0) as source:
        write_gguf(out, list(metadata(model, shape)), tensors, source)


def _not_llama(model: GgmlFile, detail: str) -> ModelFileError:
    return ModelFileError(
        f"{model.path} is a {model.format_name} file but not a complete LLaMA model ({detail}). warmserve converts "
        "only LLaMA files of llama.cpp's GGML era. Get a GGUF version of the model, or convert its original weights "
        "with llama.cpp's convert_hf_to_gguf.py."
    )


def _mapped_tensors(model: GgmlFile) -> list[TensorCopy]:
    copies = []
    for tensor in model.tensors:
        name = gguf_name(tensor.name)
        if name is None:
            raise _not_llama(model, f"it has a tensor named '{tensor.name}'")
        copies.append(TensorCopy(name, tensor.dims, tensor.type_id, tensor.offset, tensor.size))
    names = {copy.name for copy in copies}
    expected = {"token_embd.weight", "output_norm.weight"}
    expected |= {f"blk.{i}.{suffix}" for i in range(model.hparams.n_layer) for suffix in _LAYER_NAMES.values()}
    missing = sorted(expected - names)
    if missing:
        raise _not_llama(model, f"{len(missing)} tensors are missing, the first '{missing[0]}'")
    extra = [copy.name for copy in copies if copy.name.startswith("blk.") and copy.name not in expected]
    if extra:
        raise _not_llama(model, f"its header says {model.hparams.n_layer} layers but it has '{extra[0]}'")
    return copies


def _tensor(model: GgmlFile, name: str) -> TensorEntry:
    return next(t for t in model.tensors if t.name == name)


def llama_shape(model: GgmlFile, options: ConversionOptions) -> LlamaShape:
    hp = model.hparams
    embeddings = _tensor(model, "tok_embeddings.weight")
    if embeddings.dims != (hp.n_embd, hp.n_vocab):
        raise _not_llama(
            model, f"tok_embeddings is {list(embeddings.dims)}, not [n_embd, n_vocab] = [{hp.n_embd}, {hp.n_vocab}]"
        )
    gate = _tensor(model, "layers.0.feed_forward.w1.weight")
    keys = _tensor(model, "layers.0.attention.wk.weight")
    head_dim = hp.n_embd // hp.n_head
    if len(gate.dims) != 2 or len(keys.dims) != 2 or keys.dims[1] % head_dim or hp.n_head % (keys.dims[1] // head_dim):
        raise _not_llama(model, f"layer 0's key projection is {list(keys.dims)} with {hp.n_head} heads")
    context = options.context_length
    if context is None:
        context = LLAMA_2_CONTEXT if _LLAMA_2_NAME.search(model.path.name) else LLAMA_1_CONTEXT
    eps = DEFAULT_RMS_NORM_EPS if options.rms_norm_eps is None else options.rms_norm_eps
    return LlamaShape(n_ff=gate.dims[1], n_head_kv=keys.dims[1] // head_dim, context_length=context, rms_norm_eps=eps)


def metadata(model: GgmlFile, shape: LlamaShape) -> Iterator[Field]:
    """The GGUF key-values of `model`, as llama.cpp's reader of LLaMA files wants them."""
    hp = model.hparams
    yield Field("general.architecture", Kind.STRING, "llama")
    yield Field("general.name", Kind.STRING, model.path.name.split(".")[0])
    yield Field("general.description", Kind.STRING, f"converted by warmserve from {model.format_name}")
    yield Field("general.file_type", Kind.UINT32, hp.ftype)
    if any(t.type.block > 1 for t in model.tensors):
        yield Field("general.quantization_version", Kind.UINT32, QUANTIZATION_VERSION)
    yield Field("llama.context_length", Kind.UINT32, shape.context_length)
    yield Field("llama.embedding_length", Kind.UINT32, hp.n_embd)
    yield Field("llama.block_count", Kind.UINT32, hp.n_layer)
    yield Field("llama.feed_forward_length", Kind.UINT32, shape.n_ff)
    yield Field("llama.rope.dimension_count", Kind.UINT32, hp.n_rot)
    yield Field("llama.attention.head_count", Kind.UINT32, hp.n_head)
    yield Field("llama.attention.head_count_kv", Kind.UINT32, shape.n_head_kv)
    yield Field("llama.attention.layer_norm_rms_epsilon", Kind.FLOAT32, shape.rms_norm_eps)
    texts, scores, types = sentencepiece_vocab(model)
    yield Field("tokenizer.ggml.model", Kind.STRING, "llama")
    yield Field("tokenizer.ggml.tokens", Kind.ARRAY, tuple(texts), Kind.STRING)
    yield Field("tokenizer.ggml.scores", Kind.ARRAY, tuple(scores), Kind.FLOAT32)
    yield Field("tokenizer.ggml.token_type", Kind.ARRAY, tuple(types), Kind.INT32)
    yield Field("tokenizer.ggml.unknown_token_id", Kind.UINT32, 0)
    yield Field("tokenizer.ggml.bos_token_id", Kind.UINT32, 1)
    yield Field("tokenizer.ggml.eos_token_id", Kind.UINT32, 2)


def sentencepiece_vocab(model: GgmlFile) -> tuple[list[bytes], list[float], list[int]]:
    """Token texts, scores and types as SentencePiece (and GGUF) spell them.

    LLaMA's vocabulary: 0 <unk>, 1 <s>, 2 </s>, then the 256 byte tokens <0x00>..<0xFF>, then pieces.
    """
    texts, scores, types = [], [], []
    for index, token in enumerate(model.vocab):
        text, kind = token.text, NORMAL
        if index <= 2:
            text, kind = (b"<unk>", UNKNOWN) if index == 0 else (b"<s>" if index == 1 else b"</s>", CONTROL)
        elif not text:
            kind = CONTROL
        elif 3 <= index <= 258 and text == bytes([index - 3]):
            text, kind = f"<0x{index - 3:02X}>".encode(), BYTE
        else:
            text = text.replace(b" ", _SPACE)
        texts.append(text)
        scores.append(token.score)
        types.append(kind)
    return texts, scores, types


def describe(model: GgmlFile) -> str:
    """One line for logs: format, size of the model, file type."""
    hp = model.hparams
    return f"{model.format_name}, {hp.n_layer} layers x {hp.n_embd}, {hp.n_vocab} tokens, {len(model.tensors)} tensors"
