"""LoRA adapters: a fine-tune served on top of its base model, as a model id of its own.

An adapter is named in a model spec (`adapters:`) or added at run time through /admin, and a
request selects it by `model`, like any model. The spec is the same in the config file, on the
command line (`--adapter NAME=PATH`) and in the admin API's body. The files are checked here,
cheaply, so a typo is an error at start or a 400 naming the adapter; whether the weights fit
the base model only the engine that loads them can tell (backends/*).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What a PEFT adapter folder holds (transformers); llama.cpp reads one GGUF file.
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


class AdapterSpec(BaseModel):
    """One LoRA adapter of a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^\s]+$",
        description="The adapter's model id: requests name it in `model`; unique among models and adapters.",
    )
    path: str = Field(
        min_length=1,
        description="llama_cpp: a GGUF LoRA file; transformers: a PEFT adapter folder (adapter_config.json and "
        "its weights).",
    )
    scale: float = Field(
        1.0, ge=-16.0, le=16.0, description="Multiplies the adapter's change to the weights (after its alpha / rank)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_flag(cls, data: Any) -> Any:
        """`NAME=PATH`, as `--adapter` takes it (vLLM's `--lora-modules` form)."""
        if isinstance(data, str):
            name, sep, path = data.partition("=")
            if not sep or not name or not path:
                raise ValueError(f"an adapter on the command line is NAME=PATH, not {data!r}")
            return {"name": name.strip(), "path": path.strip()}
        return data

    def file_problem(self, backend: str) -> str | None:
        """Why the adapter's files cannot be what `backend` loads, or None when they look right."""
        path = Path(self.path).expanduser()
        if backend == "transformers":
            if not path.is_dir():
                return f"the PEFT adapter folder {path} does not exist"
            if not (path / PEFT_CONFIG).is_file():
                return f"{path} is not a PEFT adapter folder: it has no {PEFT_CONFIG}"
            if not any((path / weights).is_file() for weights in PEFT_WEIGHTS):
                return f"the PEFT adapter folder {path} has no weights ({' or '.join(PEFT_WEIGHTS)})"
            return None
        if backend == "llama_cpp" and path.is_dir():
            return f"{path} is a folder (a PEFT adapter?); llama_cpp models take a GGUF LoRA file"
        if backend == "llama_cpp" and not path.is_file():
            return f"the GGUF LoRA file {path} does not exist"
        if backend == "fake" and not path.exists():
            return f"{path} does not exist"
        return None


def adapter_error(name: str, problem: str) -> str:
    """The message of every adapter that cannot be served: it names the adapter first."""
    return f"The adapter '{name}' cannot be loaded: {problem}."


def adapters_problem(adapters: list[AdapterSpec], backend: str, generates: bool) -> str | None:
    """Why a model's `adapters:` cannot be served as written (names, files), or None."""
    names = [adapter.name for adapter in adapters]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return f"adapter names must be unique; repeated: {', '.join(repeated)}"
    if adapters and not generates:
        return "adapters need a model that generates (tasks: generate)"
    return next(
        (adapter_error(a.name, problem) for a in adapters if (problem := a.file_problem(backend)) is not None), None
    )


def name_clash(models: list[str], adapters: list[str]) -> str | None:
    """Adapters and models share one namespace of model ids: why these names clash, or None."""
    taken = sorted({name for name in adapters if name in models})
    if taken:
        return f"an adapter cannot share a model's name: {', '.join(taken)}"
    repeated = sorted({name for name in adapters if adapters.count(name) > 1})
    if repeated:
        return f"adapter names must be unique across models; repeated: {', '.join(repeated)}"
    return None
