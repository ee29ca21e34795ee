"""Write a GGUF file (version 3) whose tensor data is copied byte for byte from another file.

GGUF: the magic `GGUF`, uint32 version, uint64 tensor and key-value counts; each key-value a
string key, a uint32 value type and the value (strings and arrays carry a uint64 length, arrays
also their item type); each tensor's info its name, uint32 n_dims, uint64 dimensions (innermost
first), uint32 ggml type and uint64 offset into the data section; the data section starts at
the next multiple of the alignment (32) and every tensor within it too. Written without gguf-py
(numpy, a dependency of the transformers extra only) so the llama.cpp backend needs nothing
more, and streaming, so a 4 GB model never sits in memory.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO

GGUF_VERSION = 3
ALIGNMENT = 32
_COPY_CHUNK = 64 << 20


class Kind(IntEnum):
    """GGUF's value types."""

    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


_SCALAR_FORMATS = {
    Kind.UINT8: "<B",
    Kind.INT8: "<b",
    Kind.UINT16: "<H",
    Kind.INT16: "<h",
    Kind.UINT32: "<I",
    Kind.INT32: "<i",
    Kind.FLOAT32: "<f",
    Kind.BOOL: "<?",
    Kind.UINT64: "<Q",
    Kind.INT64: "<q",
    Kind.FLOAT64: "<d",
}

Scalar = int | float | bool | str | bytes


@dataclass(frozen=True)
class Field:
    """One key-value pair; `items` is the item type of an ARRAY value (a tuple)."""

    key: str
    kind: Kind
    value: Scalar | tuple[Scalar, ...]
    items: Kind | None = None


@dataclass(frozen=True)
class TensorCopy:
    """A tensor of the output and where its bytes lie in the source file."""

    name: str
    dims: tuple[int, ...]
    type_id: int
    source_offset: int
    size: int


def write_gguf(out: BinaryIO, fields: Sequence[Field], tensors: Sequence[TensorCopy], source: BinaryIO) -> None:
    """Write the whole file to `out` (unbuffered or flushed), copying tensor data from `source`."""
    head = bytearray(b"GGUF")
    head += struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(fields))
    for field in fields:
        head += _string(field.key) + struct.pack("<I", field.kind) + _value(field)
    offset = 0
    offsets = []
    for tensor in tensors:
        offset += -offset % ALIGNMENT
        offsets.append(offset)
        head += _string(tensor.name) + struct.pack("<I", len(tensor.dims))
        head += struct.pack(f"<{len(tensor.dims)}Q", *tensor.dims)
        head += struct.pack("<IQ", tensor.type_id, offset)
        offset += tensor.size
    head += bytes(-len(head) % ALIGNMENT)
    out.write(head)
    out.flush()
    written = 0
    for tensor, tensor_offset in zip(tensors, offsets, strict=True):
        out.write(bytes(tensor_offset - written))
        out.flush()
        _copy(source, out, tensor.source_offset, tensor.size)
        written = tensor_offset + tensor.size


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def _value(field: Field) -> bytes:
    if field.kind == Kind.ARRAY:
        assert field.items is not None
        assert isinstance(field.value, tuple)
        items = field.items
        body = b"".join(_scalar(items, item) for item in field.value)
        return struct.pack("<IQ", items, len(field.value)) + body
    assert not isinstance(field.value, tuple)
    return _scalar(field.kind, field.value)


def _scalar(kind: Kind, value: Scalar) -> bytes:
    if kind == Kind.STRING:
        assert isinstance(value, str | bytes)
        return _string(value)
    return struct.pack(_SCALAR_FORMATS[kind], value)


def _copy(source: BinaryIO, out: BinaryIO, offset: int, size: int) -> None:
    """`size` bytes from `offset` in `source` to the end of `out`: in the kernel where it can, else by chunks."""
    left = size
    try:
        while left:
            copied = os.copy_file_range(source.fileno(), out.fileno(), left, offset + size - left)
            if copied == 0:
                raise EOFError(f"the source ended {left} bytes before the end of a tensor")
            left -= copied
        return
    except AttributeError:  # not Linux
        pass
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
            raise
    source.seek(offset + size - left)
    while left:
        chunk = source.read(min(left, _COPY_CHUNK))
        if not chunk:
            raise EOFError(f"the source ended {left} bytes before the end of a tensor")
        out.write(chunk)
        left -= len(chunk)
