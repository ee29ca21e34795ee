"""Where a transformers model's files come from: a directory, a GGUF file, or the hub.

A GGUF file loads through transformers' `gguf_file=`, which dequantizes every tensor
(slow: README has the time for SmolLM2) and yields a model `save_pretrained` refuses
to write. We convert it once into a plain safetensors folder under the cache
directory, keyed by the file's identity, so every later load is quick. A GGUF model
on the hub (`owner/repo:QUANT`) is such a file once the pool has downloaded it; a hub
id (`owner/repo`) is a whole folder, fetched here through warmserve.hub when online.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from warmserve.config import ModelSpec
from warmserve.errors import ModelFileError
from warmserve.hub import looks_like_repo_id, snapshot

log = logging.getLogger(__name__)

CONVERTED_MARKER = "warmserve-converted.txt"
Downloader = Callable[[str, str | None], Path]


def model_directory(spec: ModelSpec, download: Downloader | None = None) -> Path:
    """A local directory `from_pretrained` can load, converting or downloading as needed."""
    source = spec.model_file() if not spec.path or spec.hub_reference() else Path(spec.path).expanduser()
    if source.is_file():
        if source.suffix != ".gguf":
            raise ModelFileError(f"{source} is a file but not a GGUF file; pass a model directory or hub id.")
        return converted_gguf(source, Path(spec.cache_dir).expanduser(), spec.trust_remote_code)
    if source.is_dir():
        return source
    if spec.path and looks_like_repo_id(spec.path):
        return (download or snapshot)(spec.path, spec.revision)
    raise ModelFileError(f"Model not found: {spec.path} is neither a local file, a directory nor a hub id.")


def converted_gguf(gguf: Path, cache_dir: Path, trust_remote_code: bool = False) -> Path:
    """A safetensors copy of a GGUF model, made on first use and reused afterwards."""
    import transformers

    stat = gguf.resolve().stat()
    identity = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    target = cache_dir / "converted" / f"{gguf.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    if (target / CONVERTED_MARKER).is_file():
        return target
    log.info("converting %s to safetensors once (dequantizing GGUF); cached in %s", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _convert(gguf, scratch, trust_remote_code)
        (scratch / CONVERTED_MARKER).write_text(identity + "\n")
        try:
            os.replace(scratch, target)
        except OSError:
            if not (target / CONVERTED_MARKER).is_file():  # another worker won the race
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path, trust_remote_code: bool) -> None:
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf.name, "trust_remote_code": trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kwargs)
    save_model(model, str(out / "model.safetensors"))
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the saved weights are plain tensors now
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
