"""The GGUF file llama.cpp should open: the model's own, or an old GGML file converted once.

Files are told apart by their magic, not their name. A GGML/GGMF/GGJT file is converted into
`<cache_dir>/converted/`, named by the file's identity (path, size, modification time) and the
conversion's options, so a changed file or option converts again and an unchanged one never does.
Every worker of a model starts at once: an exclusive lock beside the target makes the first
convert while the others wait and then find the result; the file appears under its final name
only when complete (a temporary file, fsync, rename), so a killed conversion leaves no half
file to load, only a temporary one the next conversion removes.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warmserve.backends.llama.ggml.convert import ConversionOptions, describe, write_converted
from warmserve.backends.llama.ggml.read import GGLA_MAGIC, GGUF_MAGIC, MAGICS, file_magic, read_ggml
from warmserve.errors import ModelFileError

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1  # bump when the output of the same input changes


def is_ggml(path: Path) -> bool:
    """Whether `path` is a readable GGML, GGMF or GGJT file."""
    try:
        return file_magic(path) in MAGICS
    except OSError:
        return False


def servable_gguf(path: Path, cache_dir: Path, options: ConversionOptions) -> Path:
    """`path` if it is GGUF; its GGUF conversion if it is an old llama.cpp file; else ModelFileError."""
    try:
        magic = file_magic(path)
    except FileNotFoundError:
        raise ModelFileError(
            f"Model file not found: {path}. Check the model's path (--model, or path: in the config)."
        ) from None
    except IsADirectoryError:
        raise ModelFileError(
            f"{path} is a folder; the llama_cpp backend loads one GGUF file (a Hugging Face model folder needs "
            "--backend transformers)."
        ) from None
    except OSError as exc:
        raise ModelFileError(f"Cannot read the model file {path}: {exc.strerror}.") from None
    if magic == GGUF_MAGIC:
        return path
    if magic in MAGICS:
        return converted(path, cache_dir, options)
    what = "an old llama.cpp LoRA adapter (GGLA), not a model" if magic == GGLA_MAGIC else f"it begins with {magic!r}"
    raise ModelFileError(
        f"{path} is not a GGUF file ({what}). The llama_cpp backend loads GGUF files, and converts the GGML, GGMF "
        "and GGJT files of older llama.cpp; for a Hugging Face model folder or safetensors use --backend transformers."
    )


def converted_path(path: Path, cache_dir: Path, options: ConversionOptions) -> Path:
    """Where the conversion of `path` with `options` is kept."""
    stat = path.resolve().stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{options}|{CONVERTER_VERSION}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return cache_dir / "converted" / f"{path.name.split('.')[0]}-{digest}.gguf"


def converted(path: Path, cache_dir: Path, options: ConversionOptions) -> Path:
    """The GGUF conversion of an old llama.cpp file, made on first use (once, whoever asks at the same time)."""
    target = converted_path(path, cache_dir, options)
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target):
            if target.is_file():  # another worker converted it while we waited
                return target
            for leftover in target.parent.glob(f".{target.name}.*.tmp"):  # no one else writes them now
                leftover.unlink(missing_ok=True)
            convert_to(path, target, options)
    except OSError as exc:
        raise ModelFileError(
            f"Converting {path} to GGUF in {target.parent} failed: {exc.strerror or exc}. "
            "Check that the folder is writable and has room for a copy of the model, or choose another --cache-dir."
        ) from None
    return target


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    with target.with_name(f".{target.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def convert_to(path: Path, target: Path, options: ConversionOptions) -> None:
    """Write the conversion of `path` to `target`, which appears only when complete."""
    started = time.perf_counter()
    model = read_ggml(path)
    log.info("converting %s (%s) to GGUF: %s", path, describe(model), target)
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            write_converted(model, out, options)
            os.fsync(out.fileno())
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    log.info("converted %s in %.2f s", path.name, time.perf_counter() - started)
