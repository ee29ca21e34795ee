"""Engines behind one interface (`base.Engine`), loaded by name inside worker processes.

Engine modules import heavy libraries (llama_cpp, later torch), so they are imported
only by `load_engine`, which only worker processes call.
"""

from __future__ import annotations

import importlib

from warmserve.backends.base import Engine
from warmserve.config import BackendName, ModelSpec

_ENGINES: dict[BackendName, tuple[str, str]] = {
    "llama_cpp": ("warmserve.backends.llama.engine", "LlamaCppEngine"),
    "transformers": ("warmserve.backends.hf.engine", "TransformersEngine"),
    "fake": ("warmserve.backends.fake.engine", "FakeEngine"),
}


def load_engine(spec: ModelSpec, worker_index: int = 0) -> Engine:
    module_name, class_name = _ENGINES[spec.backend]
    engine: Engine = getattr(importlib.import_module(module_name), class_name)(spec, worker_index)
    return engine


__all__ = ["Engine", "load_engine"]
