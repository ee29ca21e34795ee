"""LoRA adapters on a transformers model through PEFT, several adapters in one batch.

The first adapter wraps the model in a `PeftModel`, which puts LoRA layers into it in place; from
then on every forward call names an adapter per batch row (PEFT's `adapter_names`, "__base__" for
the base model), so one step decodes the rows of every adapter and of the base model together.
PEFT's own forward passes `adapter_names` by registering a hook on every LoRA layer for each call
(and walking the whole model twice to do it): 5 ms of an 88 ms step of 4 rows here. The hooks
here are registered once per layer and read the rows' names of the call in progress instead.

PEFT loads an adapter's weights non-strictly: weights for modules the model lacks are dropped
without a word, and a shape mismatch fails only after the LoRA layers are in place. So the
folder is checked against the model first (`_misfit`): every LoRA pair must name a linear layer
the model has, with its input and output sizes, and ranks that agree with each other and with
`r` in adapter_config.json. An adapter that does not fit is refused before anything changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from warmserve.adapters import PEFT_CONFIG, PEFT_WEIGHTS, AdapterSpec, adapter_error
from warmserve.errors import InvalidRequest, ModelNotFound

log = logging.getLogger(__name__)

BASE = "__base__"  # PEFT's name for "no adapter" in `adapter_names`
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$")


class PeftAdapters:
    """The adapters loaded on one model, and the forward call that applies them per row."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._peft: Any = None  # the PeftModel, once an adapter has been loaded
        self.names: set[str] = set()
        self._hooked: set[int] = set()  # ids of the layers that take the rows' adapters from `_rows`
        self._rows: list[str] | None = None  # the adapter of each row of the forward call in progress

    def add(self, adapter: AdapterSpec) -> None:
        """Load a PEFT folder under the adapter's name; InvalidRequest naming it when it does not fit."""
        from peft import PeftModel
        from peft.tuners.lora import LoraLayer

        folder = Path(adapter.path).expanduser()
        problem = adapter.file_problem("transformers") or _misfit(self._model, folder)
        if problem is not None:
            raise InvalidRequest(adapter_error(adapter.name, problem), param="path")
        self.remove(adapter.name)  # the same name again: the new folder replaces the old
        try:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self._model, str(folder), adapter_name=adapter.name)
            else:
                self._peft.load_adapter(str(folder), adapter_name=adapter.name, is_trainable=False)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            if self._peft is not None and adapter.name in self._peft.peft_config:
                self._peft.delete_adapter(adapter.name)
            raise InvalidRequest(adapter_error(adapter.name, f"PEFT could not load it ({exc})"), param="path") from exc
        self._peft.eval()
        if adapter.scale != 1.0:
            for module in self._peft.modules():
                if isinstance(module, LoraLayer):
                    module.set_scale(adapter.name, adapter.scale)
        self._hook_new_layers()
        self.names.add(adapter.name)

    def _hook_new_layers(self) -> None:
        """Every LoRA layer (and modules_to_save wrapper) takes `adapter_names` from the call in progress."""
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        for module in self._model.modules():
            if isinstance(module, LoraLayer | AuxiliaryTrainingWrapper) and id(module) not in self._hooked:
                module.register_forward_pre_hook(self._pass_rows, with_kwargs=True)  # type: ignore[union-attr]
                self._hooked.add(id(module))

    def _pass_rows(self, module: Any, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if self._rows is not None:
            kwargs["adapter_names"] = self._rows
        return args, kwargs

    def remove(self, name: str) -> None:
        if name in self.names:
            self._peft.delete_adapter(name)
            self.names.discard(name)

    def check(self, name: str | None) -> None:
        if name is not None and name not in self.names:
            raise ModelNotFound(f"The adapter '{name}' is not loaded here.", param="model")

    def forward(self, adapters: list[str | None], **inputs: Any) -> Any:
        """The model's forward pass, each row with its adapter (None: the base model)."""
        if self._peft is None:
            return self._model(**inputs)
        self._rows = [name or BASE for name in adapters]
        try:
            return self._model(**inputs)
        finally:
            self._rows = None

    @contextlib.contextmanager
    def base_only(self) -> Iterator[None]:
        """Calls into the model meanwhile see no adapter (embeddings, which call the model's body directly)."""
        if self._peft is None:
            yield
            return
        with self._peft.disable_adapter():
            yield


def _misfit(model: Any, folder: Path) -> str | None:
    """Why the PEFT folder's LoRA weights cannot apply to `model`, or None when they fit."""
    try:
        config = json.loads((folder / PEFT_CONFIG).read_text())
        shapes = _weight_shapes(folder)
    except (OSError, ValueError) as exc:
        return f"its files cannot be read ({exc})"
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        return f"it is a {config.get('peft_type')} adapter; only LoRA adapters are served"
    if config.get("use_dora"):
        return "it is a DoRA adapter, which PEFT cannot mix with other adapters in one batch"
    rank = config.get("r")
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        match = _LORA_KEY.match(key)
        if match is not None:
            pairs.setdefault(match["module"], {})[match["part"]] = shape
    if not pairs:
        return "its weights hold no LoRA matrices"
    modules = dict(model.named_modules())
    for name, pair in sorted(pairs.items()):
        layer = modules.get(name)
        if layer is not None and hasattr(layer, "get_base_layer"):  # the LoRA layer of an earlier adapter
            layer = layer.get_base_layer()
        if not isinstance(layer, torch.nn.Linear):
            return f"the base model has no linear layer '{name}' (an adapter of another model?)"
        if set(pair) != {"A", "B"}:
            return f"'{name}' has only lora_{''.join(pair)}"
        (rank_a, fan_in), (fan_out, rank_b) = pair["A"][:2], pair["B"][:2]
        if (fan_in, fan_out) != (layer.in_features, layer.out_features):
            return (
                f"'{name}' is {layer.in_features} -> {layer.out_features} in the base model but "
                f"{fan_in} -> {fan_out} in the adapter (an adapter of another model?)"
            )
        if rank_a != rank_b:
            return f"the ranks of '{name}' disagree: lora_A has {rank_a}, lora_B {rank_b}"
        if isinstance(rank, int) and not config.get("rank_pattern") and rank_a != rank:
            return f"'{name}' has rank {rank_a} but {PEFT_CONFIG} says r={rank}"
    return None


def _weight_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    safetensors, pickled = (folder / name for name in PEFT_WEIGHTS)
    if safetensors.is_file():
        from safetensors import safe_open

        with safe_open(str(safetensors), framework="pt") as weights:
            return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}  # noqa: SIM118
    state = torch.load(pickled, map_location="cpu", weights_only=True)
    return {key: tuple(value.shape) for key, value in state.items()}
