"""A tiny LLaMA with random weights, written as an old GGJT v3 file and, independently, as GGUF.

The stand-in for `llama-2-7b-chat.ggmlv3.q4_K_S.bin` in the tests, the example and the benchmark:
LLaMA's vocabulary layout (unk, bos, eos, the 256 byte tokens, then pieces with scores), grouped-query
attention (4 query heads, 2 key/value heads), F32 norms, F16 and Q8_0 matrices. The GGJT file is
written the way llama.cpp's old convert.py did (spaces for '▁', bare bytes, empty control tokens);
the GGUF file with gguf-py's GGUFWriter from the same weights, as a direct conversion would.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T

# English pieces (SentencePiece spelling) for the prompts the tests use; the rest falls back to bytes.
PIECES = [
    "▁the", "▁a", "▁Q", ":", "▁A", "▁flower", "▁flowers", "▁rose", "▁is", "▁of", "▁to", "▁and", "▁in",
    "▁you", "▁Tell", "▁me", "▁about", "▁customer", "▁day", "s", "e", "t", "a", "o", "i", "n", "r", "l",
    "▁", "▁w", "▁h", "▁b", "▁c", "?", ".", ",", "er", "in", "on", "an", "▁th", "ing",
]  # fmt: skip
FIRST_PIECE = 259  # after unk, bos, eos and the 256 byte tokens
FTYPE_MOSTLY_Q8_0 = 7


@dataclass
class TinyLlama:
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    n_layer: int = 2
    n_mult: int = 32
    seed: int = 0
    quantized: T = T.Q8_0
    tensors: dict[str, tuple[T, tuple[int, ...], bytes]] = field(default_factory=dict)  # ggml dims, raw data

    @property
    def n_vocab(self) -> int:
        return FIRST_PIECE + len(PIECES)

    @property
    def n_ff(self) -> int:
        return ((2 * (4 * self.n_embd) // 3 + self.n_mult - 1) // self.n_mult) * self.n_mult

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        kv = self.head_dim * self.n_head_kv
        shapes: dict[str, tuple[T, int, int]] = {  # name: type, rows (outputs), columns (inputs)
            "tok_embeddings.weight": (T.F16, self.n_vocab, self.n_embd),
            "norm.weight": (T.F32, 1, self.n_embd),
            "output.weight": (self.quantized, self.n_vocab, self.n_embd),
        }
        for i in range(self.n_layer):
            shapes |= {
                f"layers.{i}.attention.wq.weight": (self.quantized, self.n_embd, self.n_embd),
                f"layers.{i}.attention.wk.weight": (self.quantized, kv, self.n_embd),
                f"layers.{i}.attention.wv.weight": (self.quantized, kv, self.n_embd),
                f"layers.{i}.attention.wo.weight": (self.quantized, self.n_embd, self.n_embd),
                f"layers.{i}.attention_norm.weight": (T.F32, 1, self.n_embd),
                f"layers.{i}.feed_forward.w1.weight": (self.quantized, self.n_ff, self.n_embd),
                f"layers.{i}.feed_forward.w2.weight": (T.F16, self.n_embd, self.n_ff),
                f"layers.{i}.feed_forward.w3.weight": (self.quantized, self.n_ff, self.n_embd),
                f"layers.{i}.ffn_norm.weight": (T.F32, 1, self.n_embd),
            }
        for name, (kind, rows, columns) in shapes.items():
            if rows == 1:
                values = 1.0 + 0.1 * rng.standard_normal(columns).astype(np.float32)
                self.tensors[name] = (kind, (columns,), values.astype(np.float32).tobytes())
                continue
            values = (rng.standard_normal((rows, columns)) / np.sqrt(columns) * 2).astype(np.float32)
            if name == "output.weight":
                values[2] = 0  # </s> never wins, so a greedy answer is never empty
            self.tensors[name] = (kind, (columns, rows), _encode(values, kind))

    def sentencepiece_vocab(self) -> tuple[list[str], list[float], list[int]]:
        texts = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *PIECES]
        scores = [0.0, 0.0, 0.0, *([0.0] * 256), *(-float(i) for i in range(len(PIECES)))]
        types = [2, 3, 3, *([6] * 256), *([1] * len(PIECES))]
        return texts, scores, types


def _encode(values: np.ndarray, kind: T) -> bytes:
    if kind == T.F32:
        return values.astype(np.float32).tobytes()
    if kind == T.F16:
        return values.astype(np.float16).tobytes()
    return bytes(gguf.quants.quantize(values, kind).tobytes())


MAGICS = {"GGML": b"lmgg", "GGMF": b"fmgg", "GGJT": b"tjgg"}


def write_ggjt(model: TinyLlama, path: Path, version: int = 3, container: str = "GGJT") -> Path:
    """The model as llama.cpp wrote GGJT files (May-August 2023), or its older GGMF / unversioned GGML."""
    out = bytearray(MAGICS[container] + (b"" if container == "GGML" else struct.pack("<I", version)))
    n_rot = model.head_dim
    out += struct.pack(
        "<7i", model.n_vocab, model.n_embd, model.n_mult, model.n_head, model.n_layer, n_rot, FTYPE_MOSTLY_Q8_0
    )
    texts, scores, _ = model.sentencepiece_vocab()
    for index, (text, score) in enumerate(zip(texts, scores, strict=True)):
        if index == 0:
            raw = " \u2047 ".encode()
        elif index <= 2:
            raw = b""
        elif index < FIRST_PIECE:
            raw = bytes([index - 3])
        else:
            raw = text.replace("▁", " ").encode()
        out += struct.pack("<I", len(raw)) + raw + (b"" if container == "GGML" else struct.pack("<f", score))
    for name, (kind, dims, data) in model.tensors.items():
        encoded = name.encode()
        out += struct.pack("<3i", len(dims), len(encoded), int(kind)) + struct.pack(f"<{len(dims)}i", *dims) + encoded
        if container == "GGJT":
            out += bytes(-len(out) % 32)
        out += data
    path.write_bytes(bytes(out))
    return path


GGUF_NAMES = {
    "tok_embeddings": "token_embd",
    "norm": "output_norm",
    "output": "output",
    "attention.wq": "attn_q",
    "attention.wk": "attn_k",
    "attention.wv": "attn_v",
    "attention.wo": "attn_output",
    "attention_norm": "attn_norm",
    "feed_forward.w1": "ffn_gate",
    "feed_forward.w2": "ffn_down",
    "feed_forward.w3": "ffn_up",
    "ffn_norm": "ffn_norm",
}


def gguf_tensor_name(name: str) -> str:
    stem = name.removesuffix(".weight")
    if stem.startswith("layers."):
        _, index, rest = stem.split(".", 2)
        return f"blk.{index}.{GGUF_NAMES[rest]}.weight"
    return f"{GGUF_NAMES[stem]}.weight"


def write_gguf(model: TinyLlama, path: Path, context_length: int, rms_norm_eps: float = 5e-6) -> Path:
    """The same weights written directly as GGUF with gguf-py, as a converter from the original would."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(context_length)
    writer.add_embedding_length(model.n_embd)
    writer.add_block_count(model.n_layer)
    writer.add_feed_forward_length(model.n_ff)
    writer.add_rope_dimension_count(model.head_dim)
    writer.add_head_count(model.n_head)
    writer.add_head_count_kv(model.n_head_kv)
    writer.add_layer_norm_rms_eps(rms_norm_eps)
    writer.add_file_type(FTYPE_MOSTLY_Q8_0)
    texts, scores, types = model.sentencepiece_vocab()
    writer.add_tokenizer_model("llama")
    writer.add_token_list(texts)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    for name, (kind, dims, data) in model.tensors.items():
        rows = (*reversed(dims[1:]), -1)  # numpy order, the last axis in bytes
        writer.add_tensor(gguf_tensor_name(name), np.frombuffer(data, dtype=np.uint8).reshape(rows), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
