"""What a model folder holds, read from its small files without loading the model."""

from __future__ import annotations

import json
from pathlib import Path

# Heads that generate text; an architecture without one (BertModel, XLMRobertaModel) only encodes.
_GENERATIVE_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def is_generative_folder(folder: Path) -> bool:
    """False for a folder holding an embedding model: a sentence-transformers folder (modules.json),
    or an architecture without a generating head. True otherwise, including a GGUF file or a hub
    id, which cannot be looked into cheaply and hold generative models in practice."""
    if not folder.is_dir():
        return True
    if (folder / "modules.json").is_file():
        return False
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return True
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if isinstance(architectures, list) and architectures:
        return any(str(a).endswith(_GENERATIVE_SUFFIXES) for a in architectures)
    return True
