"""Engines behind two interfaces (`base.Generator`, `base.Embedder`), loaded by name inside worker processes.

One package per engine: llama/ (llama.cpp), hf/ (transformers), fake/ (tests); the
modules beside them are what every engine shares. Engine modules import heavy
libraries (llama_cpp, torch, numpy), so they are imported only by `load_engine`,
which only worker processes call; this package itself stays light for the API process.
"""

from __future__ import annotations

import importlib

from warmserve.backends.base import Embedder, Engine, Generator
from warmserve.config import ModelSpec
from warmserve.model_options import BackendName

_ENGINES: dict[BackendName, tuple[str, str]] = {
    "llama_cpp": ("warmserve.backends.llama.engine", "LlamaCppEngine"),
    "transformers": ("warmserve.backends.hf.engine", "TransformersEngine"),
    "fake": ("warmserve.backends.fake.engine", "FakeEngine"),
}


def load_engine(spec: ModelSpec, worker_index: int = 0) -> Engine:
    """The spec's engine with the model loaded, then its adapters (a bad one fails the load, naming it)."""
    module_name, class_name = _ENGINES[spec.backend]
    engine: Engine = getattr(importlib.import_module(module_name), class_name)(spec, worker_index)
    try:
        for adapter in spec.adapters:
            engine.add_adapter(adapter)
    except BaseException:
        engine.close()
        raise
    return engine


__all__ = ["Embedder", "Engine", "Generator", "load_engine"]
