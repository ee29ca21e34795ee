"""Old llama.cpp model files (GGML, GGMF, GGJT) converted to GGUF, which llama.cpp reads today.

read.py parses them, convert.py translates them, gguf_write.py writes GGUF, cache.py converts
each file once; `loadable_gguf` is the one call the engine makes.
"""

from __future__ import annotations

from pathlib import Path

from warmserve.backends.llama.ggml.cache import convert_to, converted, is_ggml, servable_gguf
from warmserve.backends.llama.ggml.convert import ConversionOptions
from warmserve.config import ModelSpec
from warmserve.errors import ModelFileError
from warmserve.model_options import GgmlOptions


def conversion_options(options: GgmlOptions) -> ConversionOptions:
    return ConversionOptions(context_length=options.context_length, rms_norm_eps=options.rms_norm_eps)


def loadable_gguf(spec: ModelSpec) -> Path:
    """The GGUF file to open for `spec`: its own, or its conversion; ModelFileError (permanent) saying why not."""
    try:
        path = spec.model_file()
    except FileNotFoundError as exc:
        raise ModelFileError(
            f"{str(exc).rstrip('.')}. Check the model's path (--model, or path: in the config)."
        ) from None
    return servable_gguf(path.absolute(), Path(spec.cache_dir).expanduser(), conversion_options(spec.ggml))


def convert_file(path: Path, cache_dir: Path, options: GgmlOptions, output: Path | None = None) -> Path | None:
    """`warmserve convert`: the GGUF conversion of an old file, in the cache (where serving finds it) or at
    `output`; None if `path` is GGUF already. ModelFileError for anything else."""
    if not is_ggml(path):
        servable_gguf(path, cache_dir, conversion_options(options))  # passes a GGUF, says why not for the rest
        return None
    if output is None:
        return converted(path, cache_dir, conversion_options(options))
    convert_to(path, output, conversion_options(options))
    return output


__all__ = ["conversion_options", "convert_file", "loadable_gguf"]
