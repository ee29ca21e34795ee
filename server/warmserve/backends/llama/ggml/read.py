"""Read the files llama.cpp wrote before GGUF (August 2023): GGML, GGMF and GGJT.

Layout, all little-endian: a uint32 magic (and, except unversioned GGML, a uint32 version);
seven int32 hyperparameters (n_vocab, n_embd, n_mult, n_head, n_layer, n_rot, ftype); n_vocab
tokens, each a uint32 length, its bytes and (GGMF, GGJT) a float32 score; then tensors until the
end of the file, each int32 n_dims, name length and ggml type, n_dims int32 dimensions (innermost
first), the name, (GGJT) padding to a 32-byte file offset, and the data. Only the index is read
here: tensor data stays in the file until the converter copies it.

Quantized blocks changed twice while these formats lived: every quantized type in GGJT v2, then
Q4_0, Q4_1 and Q8_0 again in GGJT v3 (a 16-bit scale). Tensors in a layout llama.cpp no longer
reads are refused here, naming the tensor, rather than converted into a file that loads but
computes nonsense.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from warmserve.errors import ModelFileError

Container = Literal["GGML", "GGMF", "GGJT"]

# The first four bytes on disk (the little-endian uint32 magics 0x67676d6c, 0x67676d66, 0x67676a74).
MAGICS: dict[bytes, Container] = {b"lmgg": "GGML", b"fmgg": "GGMF", b"tjgg": "GGJT"}
GGUF_MAGIC = b"GGUF"
GGLA_MAGIC = b"algg"  # an old llama.cpp LoRA adapter

_ALIGNMENT = 32  # GGJT pads each tensor's data to a multiple of this file offset
_MAX_NAME = 4096
_MAX_TOKEN = 4096


@dataclass(frozen=True)
class TensorType:
    name: str
    block: int  # elements per block
    block_bytes: int


# ggml's type ids, with today's block sizes; the ids of that era are the same.
TENSOR_TYPES: dict[int, TensorType] = {
    0: TensorType("F32", 1, 4),
    1: TensorType("F16", 1, 2),
    2: TensorType("Q4_0", 32, 18),
    3: TensorType("Q4_1", 32, 20),
    6: TensorType("Q5_0", 32, 22),
    7: TensorType("Q5_1", 32, 24),
    8: TensorType("Q8_0", 32, 34),
    10: TensorType("Q2_K", 256, 84),
    11: TensorType("Q3_K", 256, 110),
    12: TensorType("Q4_K", 256, 144),
    13: TensorType("Q5_K", 256, 176),
    14: TensorType("Q6_K", 256, 210),
}
_REMOVED_TYPES = {4: "Q4_2", 5: "Q4_3"}  # dropped from ggml in May 2023
_UNQUANTIZED = {0, 1}
_CHANGED_IN_V3 = {2, 3, 8}  # Q4_0, Q4_1, Q8_0


@dataclass(frozen=True)
class Hyperparameters:
    n_vocab: int
    n_embd: int
    n_mult: int
    n_head: int
    n_layer: int
    n_rot: int
    ftype: int


@dataclass(frozen=True)
class Token:
    text: bytes  # as the old format stored it: spaces, not '▁'; byte tokens as the raw byte
    score: float


@dataclass(frozen=True)
class TensorEntry:
    name: str
    type_id: int
    dims: tuple[int, ...]  # ggml order: innermost (row length) first, as GGUF stores them too
    offset: int  # of the data in the file
    size: int  # bytes

    @property
    def type(self) -> TensorType:
        return TENSOR_TYPES[self.type_id]


@dataclass(frozen=True)
class GgmlFile:
    path: Path
    container: Container
    version: int  # 0 for unversioned GGML
    hparams: Hyperparameters
    vocab: tuple[Token, ...]
    tensors: tuple[TensorEntry, ...]

    @property
    def format_name(self) -> str:
        return self.container if self.container == "GGML" else f"{self.container} v{self.version}"


def file_magic(path: Path) -> bytes:
    """The first four bytes of a file (fewer if it is shorter)."""
    with path.open("rb") as f:
        return f.read(4)


def read_ggml(path: Path) -> GgmlFile:
    """The header, vocabulary and tensor index of an old llama.cpp file; ModelFileError saying why not."""
    size = path.stat().st_size
    with path.open("rb") as f:
        reader = _Reader(f, path, size)
        container, version = _read_magic(reader)
        hparams = _read_hparams(reader, container)
        vocab = _read_vocab(reader, container, hparams.n_vocab)
        tensors = _read_tensors(reader, container, version)
    return GgmlFile(path, container, version, hparams, vocab, tensors)


class _Reader:
    def __init__(self, f: BinaryIO, path: Path, size: int) -> None:
        self.f = f
        self.path = path
        self.size = size

    def take(self, n: int, what: str) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ModelFileError(
                f"{self.path} ends early, in the middle of {what} (byte {self.f.tell()} of {self.size}): "
                "the file is truncated or damaged; download it again."
            )
        return data

    def ints(self, count: int, what: str) -> tuple[int, ...]:
        return struct.unpack(f"<{count}i", self.take(4 * count, what))

    def tell(self) -> int:
        return self.f.tell()

    def skip_to(self, offset: int) -> None:
        self.f.seek(offset)


def _read_magic(reader: _Reader) -> tuple[Container, int]:
    magic = reader.take(4, "the magic")
    container = MAGICS.get(magic)
    if container is None:
        raise ModelFileError(f"{reader.path} is not a GGML, GGMF or GGJT file (it begins with {magic!r}).")
    if container == "GGML":
        return container, 0
    (version,) = struct.unpack("<I", reader.take(4, "the version"))
    known = (1,) if container == "GGMF" else (1, 2, 3)
    if version not in known:
        raise ModelFileError(
            f"{reader.path} is a {container} file of version {version}, which no llama.cpp release wrote "
            f"(known: {', '.join(map(str, known))}); the file is damaged or not a llama.cpp model."
        )
    return container, version


def _not_llama(reader: _Reader, container: Container, detail: str) -> ModelFileError:
    return ModelFileError(
        f"{reader.path} is a {container} file but not of a LLaMA-family model ({detail}). warmserve converts only "
        "the LLaMA files llama.cpp read before GGUF; other GGML models (GPT-2, GPT-J, Falcon, MPT, ...) used "
        "formats of their own. Get a GGUF version of the model, or convert its original weights with llama.cpp's "
        "convert_hf_to_gguf.py."
    )


def _read_hparams(reader: _Reader, container: Container) -> Hyperparameters:
    hparams = Hyperparameters(*reader.ints(7, "the hyperparameters"))
    problems = []
    if not 1 <= hparams.n_vocab <= 1_000_000:
        problems.append(f"n_vocab {hparams.n_vocab}")
    if not 1 <= hparams.n_head <= hparams.n_embd <= 1 << 17 or hparams.n_embd % hparams.n_head:
        problems.append(f"n_embd {hparams.n_embd} with n_head {hparams.n_head}")
    if not 1 <= hparams.n_layer <= 1024:
        problems.append(f"n_layer {hparams.n_layer}")
    if hparams.n_head and not 1 <= hparams.n_rot <= max(1, hparams.n_embd // hparams.n_head):
        problems.append(f"n_rot {hparams.n_rot}")
    if not 0 <= hparams.ftype <= 18:
        problems.append(f"file type {hparams.ftype}")
    if problems:
        raise _not_llama(reader, container, "its header makes no sense as LLaMA's: " + ", ".join(problems))
    return hparams


def _read_vocab(reader: _Reader, container: Container, n_vocab: int) -> tuple[Token, ...]:
    if container == "GGML":
        raise ModelFileError(
            f"{reader.path} is an unversioned GGML file (March 2023), which stores no token scores: llama.cpp's "
            "tokenizer cannot be rebuilt from it. Get a GGUF version of the model, or convert its original "
            "weights with llama.cpp's convert_hf_to_gguf.py."
        )
    tokens = []
    for index in range(n_vocab):
        (length,) = struct.unpack("<I", reader.take(4, f"token {index}"))
        if length > _MAX_TOKEN:
            raise _not_llama(reader, container, f"token {index} would be {length} bytes long")
        text = reader.take(length, f"token {index}")
        (score,) = struct.unpack("<f", reader.take(4, f"the score of token {index}"))
        tokens.append(Token(text, score))
    return tuple(tokens)


def _read_tensors(reader: _Reader, container: Container, version: int) -> tuple[TensorEntry, ...]:
    tensors: list[TensorEntry] = []
    while reader.tell() < reader.size:
        n_dims, name_length, type_id = reader.ints(3, "a tensor header")
        if not 1 <= n_dims <= 4 or not 1 <= name_length <= _MAX_NAME:
            raise _not_llama(reader, container, f"a tensor header at byte {reader.tell() - 12} makes no sense")
        dims = reader.ints(n_dims, "a tensor's dimensions")
        raw_name = reader.take(name_length, "a tensor name")
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            raise _not_llama(reader, container, f"a tensor is named {raw_name[:40]!r}") from None
        tensor_type = _tensor_type(reader, container, version, name, type_id)
        if any(d < 1 for d in dims) or dims[0] % tensor_type.block:
            raise _not_llama(reader, container, f"tensor '{name}' has dimensions {list(dims)}")
        offset = reader.tell()
        if container == "GGJT":
            offset += -offset % _ALIGNMENT
        elements = 1
        for d in dims:
            elements *= d
        size = elements // tensor_type.block * tensor_type.block_bytes
        if offset + size > reader.size:
            raise ModelFileError(
                f"{reader.path} is truncated: tensor '{name}' needs bytes up to {offset + size} but the file has "
                f"{reader.size}. An interrupted download? Download it again."
            )
        tensors.append(TensorEntry(name, type_id, tuple(dims), offset, size))
        reader.skip_to(offset + size)
    return tuple(tensors)


def _tensor_type(reader: _Reader, container: Container, version: int, name: str, type_id: int) -> TensorType:
    """The tensor's type, if its blocks are laid out as llama.cpp reads them today."""
    fix = (
        "Get a GGUF (or a GGJT v3) version of the model, or convert its original weights with llama.cpp's "
        "convert_hf_to_gguf.py and quantize them again."
    )
    if type_id in _REMOVED_TYPES:
        raise ModelFileError(
            f"{reader.path}: tensor '{name}' is {_REMOVED_TYPES[type_id]}, a quantization ggml dropped in May 2023 "
            f"that nothing reads any more. {fix}"
        )
    tensor_type = TENSOR_TYPES.get(type_id)
    if tensor_type is None:
        raise _not_llama(reader, container, f"tensor '{name}' has ggml type {type_id}, which no LLaMA file used")
    if type_id in _UNQUANTIZED:
        return tensor_type
    old = container != "GGJT" or version < 2
    if old or (version == 2 and type_id in _CHANGED_IN_V3):
        changed, convertible = ("GGJT v2", "F32 and F16") if old else ("GGJT v3", "F32, F16, Q5_0 and Q5_1")
        raise ModelFileError(
            f"{reader.path} is a {container}{'' if container == 'GGML' else f' v{version}'} file and its tensor "
            f"'{name}' is {tensor_type.name} in the block layout used before {changed}, which llama.cpp no longer "
            f"reads (only {convertible} tensors of such files can be converted). {fix}"
        )
    return tensor_type
