"""The LoRA adapters a model serves, and the ones on their way in or out.

An adapter's name is its model id. While it is being added the name is taken (a second add is a
409) but requests naming it are still a 404; while it is being removed its requests in flight
finish and new ones get 503 `model_unloading`, as a model's do while it drains.
"""

from __future__ import annotations

from typing import Literal

from warmserve.adapters import AdapterSpec
from warmserve.errors import ModelNotFound, ModelUnloading

AdapterState = Literal["loading", "ready", "draining"]


class AdapterSet:
    def __init__(self, adapters: list[AdapterSpec]) -> None:
        self._served: dict[str, AdapterSpec] = {adapter.name: adapter for adapter in adapters}
        self._adding: set[str] = set()
        self._removing: set[str] = set()

    @property
    def served(self) -> list[AdapterSpec]:
        """The adapters requests may name (those being removed included, until they are gone)."""
        return list(self._served.values())

    def state(self, name: str) -> AdapterState:
        return "loading" if name in self._adding else "draining" if name in self._removing else "ready"

    @property
    def names(self) -> set[str]:
        """Every name taken: served, being added or being removed."""
        return set(self._served) | self._adding

    def get(self, name: str) -> AdapterSpec | None:
        return self._served.get(name)

    def check(self, name: str, model: str) -> None:
        """Raise why a request may not run on adapter `name` now (none: it may)."""
        if name in self._removing:
            raise ModelUnloading(f"The adapter '{name}' of model '{model}' is being removed and takes no new requests.")
        if name not in self._served:
            raise ModelNotFound(f"The adapter '{name}' is not served by model '{model}'.", param="model")

    def begin_add(self, adapter: AdapterSpec) -> None:
        self._adding.add(adapter.name)

    def end_add(self, adapter: AdapterSpec, loaded: bool) -> None:
        self._adding.discard(adapter.name)
        if loaded:
            self._served[adapter.name] = adapter

    def begin_remove(self, name: str) -> AdapterSpec:
        """Turn new requests on `name` away; raises ModelNotFound for an adapter the model does not serve."""
        adapter = self._served.get(name)
        if adapter is None or name in self._removing:
            raise ModelNotFound(f"The model serves no adapter '{name}'.", param="adapter")
        self._removing.add(name)
        return adapter

    def end_remove(self, name: str, removed: bool) -> None:
        self._removing.discard(name)
        if removed:
            self._served.pop(name, None)
