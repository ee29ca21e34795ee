"""The wire format of warmserve's own /admin routes (not part of OpenAI's API).

Kept apart from the protocol package, which is OpenAI's schema and nothing else. The body that
loads a model is the config file's `ModelSpec` itself, so a model entry can be moved
between warmserve.yaml and the admin API unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from warmserve.adapters import AdapterSpec
from warmserve.config import ModelSpec
from warmserve.protocol import ModelState, WireModel


class WorkerInfo(WireModel):
    index: int = Field(description="The worker's slot in the model's pool.")
    pid: int | None = Field(description="Process id, once spawned.")
    state: Literal["loading", "ready", "failed", "exited"]
    running: int = Field(description="Requests this worker holds now.")
    load_error: str | None = Field(None, description="Why this worker failed to load the model.")
    slots: int = Field(0, description="Requests its engine runs at once; 0 until it holds the model.")
    restarts: int = Field(0, description="Processes started in this worker's place after one exited.")
    last_exit: str | None = Field(None, description="How the last process in its place ended, e.g. exit code -9.")


class DownloadInfo(WireModel):
    """A hub model's download, shown while the model is `loading` and its files are on their way."""

    done_bytes: int = Field(description="Bytes downloaded so far (files already in the cache are not counted).")
    total_bytes: int | None = Field(description="Bytes to download in all; null until the hub has listed them.")


class AdminModel(WireModel):
    id: str
    object: Literal["admin.model"] = "admin.model"
    state: ModelState = Field(
        description="unloaded: no workers (a lazy model loads on its first request); draining: being "
        "unloaded, requests in flight finish; then as in /v1/models."
    )
    reason: str | None = Field(
        None, description="Why the model is failed or unhealthy: the load error, naming the file and the fix."
    )
    source: Literal["config", "admin"] = Field(description="From the settings, or added through /admin.")
    ready_workers: int
    running: int = Field(description="Requests running on the model's workers.")
    waiting: int = Field(description="Requests queued for a free slot (or for a lazy load).")
    idle_s: float | None = Field(description="Seconds since the last request, while loaded.")
    workers: list[WorkerInfo] = Field(description="The worker processes now (empty while unloaded, or with Ray).")
    download: DownloadInfo | None = Field(
        None, description="While a hub model's files download (before its workers start): how far it has come."
    )
    spec: ModelSpec


class AdminModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[AdminModel]


class ModelDeleted(WireModel):
    """As OpenAI's answer to deleting a model."""

    id: str
    object: Literal["model"] = "model"
    deleted: bool


class AdminAdapter(WireModel):
    """A LoRA adapter of a model, served as the model id `id`."""

    id: str
    object: Literal["admin.adapter"] = "admin.adapter"
    model: str = Field(description="The base model it runs on.")
    state: Literal["loading", "ready", "draining", "unloaded"] = Field(
        description="loading: being loaded by the workers; draining: being removed, its requests in flight "
        "finish; unloaded: its model is unloaded (it loads with the model)."
    )
    running: int = Field(description="Requests on the adapter in flight (running or queued).")
    spec: AdapterSpec


class AdminAdapterList(WireModel):
    object: Literal["list"] = "list"
    data: list[AdminAdapter]


class AdapterDeleted(WireModel):
    id: str
    object: Literal["admin.adapter"] = "admin.adapter"
    deleted: bool
