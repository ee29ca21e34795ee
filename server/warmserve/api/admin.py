"""/admin/models: list, load, unload and remove models while the server runs.

    GET    /admin/models                   every model, its state, workers (pid, requests) and spec
    GET    /admin/models/{name}            one of them
    POST   /admin/models                   add a model (body: a `models:` entry of warmserve.yaml)
    POST   /admin/models/{name}/load       start the workers of an unloaded (e.g. lazy) model
    POST   /admin/models/{name}/unload     drain, then stop its workers; it stays listed, `unloaded`
    DELETE /admin/models/{name}            drain, stop its workers, and forget the name
    GET    /admin/events                   SSE: a snapshot of every model, then state changes and worker events

Loads answer once every worker holds the model (201 for a new model, 200 for /load), or 202
with the model's state when `wait=false` or `timeout_s` passes first (the load goes on). A model
on the Hugging Face hub (`owner/repo:QUANT`) is looked up there first: a name it does not have is
a 400 naming `path` and listing the quants the repo has; then its files download while it is
`loading`, with `download` showing the bytes done. A load whose workers keep failing is undone
and answered 503 with the reason; one that failed for good (a missing or unreadable file) is a
400 with the reason, and a new model is removed again. /load of a `failed` model starts it over.
Unloads turn new
requests away at once (503 `model_unloading`), let requests in flight finish for up to
`drain_timeout_s` (default: the server's `drain_timeout_s`), then stop the workers; they answer
when done, or 202 at once with `wait=false`. With Ray Serve the model set is Serve's: changes
are 501 `not_supported`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from warmserve import hub
from warmserve.admin_protocol import AdminModel, AdminModelList, DownloadInfo, ModelDeleted, WorkerInfo
from warmserve.api.deps import Pools
from warmserve.api.errors import ERROR_RESPONSES, SSE_EVENT
from warmserve.api.streaming import SSE_HEADERS, sse_data
from warmserve.config import ModelSpec
from warmserve.errors import InvalidRequest, ModelUnavailable
from warmserve.pool import ManagedModel, PoolEvent, PoolManager, Snapshot
from warmserve.protocol import ErrorResponse

router = APIRouter(prefix="/admin", tags=["admin"])

_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    409: {"model": ErrorResponse, "description": "A model of that name exists."},
    501: {"model": ErrorResponse, "description": "Not supported with Ray Serve."},
}
_CHANGE_RESPONSES: dict[int | str, dict[str, object]] = {
    202: {"model": AdminModel, "description": "Still loading or unloading; the body is the model now."},
    **_ADMIN_ERRORS,
}


def admin_responses(
    status: int | None = None, model: type | None = None, description: str = ""
) -> dict[int | str, dict[str, object]]:
    """An admin route's error answers, and one more success answer when given."""
    extra: dict[int | str, dict[str, object]] = (
        {} if status is None else {status: {"model": model, "description": description}}
    )
    return {**extra, **_ADMIN_ERRORS}


Wait = Query(True, description="Answer when the change is done; false: answer 202 at once.")
LoadTimeout = Query(600.0, gt=0, le=86_400, description="With wait, answer 202 if the load takes longer.")
DrainTimeout = Query(
    None, ge=0, le=3600, description="How long requests in flight may finish; default: the server's drain_timeout_s."
)


def model_info(model: ManagedModel) -> AdminModel:
    workers = [
        WorkerInfo(
            index=w.index,
            pid=w.pid,
            state=w.state,
            running=w.running,
            load_error=w.load_error,
            slots=w.slots,
            restarts=w.restarts,
            last_exit=w.last_exit,
        )
        for w in model.workers
    ]
    download = model.download
    pool = model.pool
    return AdminModel(
        id=model.spec.name,
        state=model.state,
        reason=model.reason if model.state in ("failed", "unhealthy") else None,
        source="admin" if model.source == "admin" else "config",
        ready_workers=model.ready_workers,
        running=model.running,
        waiting=model.waiting,
        idle_s=round(model.idle_s, 3) if model.pool is not None else None,
        workers=workers,
        download=DownloadInfo(done_bytes=download.done_bytes, total_bytes=download.total_bytes) if download else None,
        spec=pool.spec if pool is not None else model.spec,  # the pool's: workers counted once a download ends
    )


def _answer(model: ManagedModel, status_code: int) -> JSONResponse:
    return JSONResponse(model_info(model).model_dump(mode="json"), status_code=status_code)


@router.get("/models", responses=ERROR_RESPONSES)
async def list_models(pools: Pools) -> AdminModelList:
    return AdminModelList(data=[model_info(model) for model in list(pools.pools.values())])


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}}, **ERROR_RESPONSES},
)
async def events(pools: Pools) -> StreamingResponse:
    """Server-sent events: `snapshot` (every model and worker now), then each `state` and `worker` event."""
    return StreamingResponse(
        _event_stream(pools.subscribe()),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _event_stream(events: AsyncIterator[Snapshot | PoolEvent]) -> AsyncIterator[str]:
    async for event in events:
        yield sse_data(dataclasses.asdict(event), event=event.type)


@router.get("/models/{model:path}", responses=ERROR_RESPONSES)
async def get_model(model: str, pools: Pools) -> AdminModel:
    return model_info(pools.get(model))


@router.post(
    "/models",
    status_code=201,
    response_model=AdminModel,
    responses=_CHANGE_RESPONSES,
)
async def add_model(spec: ModelSpec, pools: Pools, wait: bool = Wait, timeout_s: float = LoadTimeout) -> JSONResponse:
    """Serve a new model: the body is one `models:` entry of warmserve.yaml (lazy ones only register)."""
    await _check_model_file(spec)
    model = await pools.add(spec)
    return await _answer_load(pools, model, wait, timeout_s, ok=201, undo_by_removing=True)


@router.post("/models/{model:path}/load", response_model=AdminModel, responses=_CHANGE_RESPONSES)
async def load_model(model: str, pools: Pools, wait: bool = Wait, timeout_s: float = LoadTimeout) -> JSONResponse:
    managed = await pools.load(model)
    return await _answer_load(pools, managed, wait, timeout_s, ok=200, undo_by_removing=False)


@router.post("/models/{model:path}/unload", response_model=AdminModel, responses=_CHANGE_RESPONSES)
async def unload_model(
    model: str, request: Request, pools: Pools, wait: bool = Wait, drain_timeout_s: float | None = DrainTimeout
) -> JSONResponse:
    unloading = pools.unload(model, drain_timeout(request, drain_timeout_s))
    managed = pools.get(model)
    if not wait:
        return _answer(managed, 202)
    await asyncio.shield(unloading)
    return _answer(managed, 200)


@router.delete("/models/{model:path}", response_model=ModelDeleted, responses=_CHANGE_RESPONSES)
async def delete_model(
    model: str, request: Request, pools: Pools, wait: bool = Wait, drain_timeout_s: float | None = DrainTimeout
) -> JSONResponse:
    managed = pools.get(model)
    removing = pools.remove(model, drain_timeout(request, drain_timeout_s))
    if not wait:
        return _answer(managed, 202)
    await asyncio.shield(removing)
    return JSONResponse(ModelDeleted(id=model, deleted=True).model_dump(mode="json"))


def drain_timeout(request: Request, drain_timeout_s: float | None) -> float:
    if drain_timeout_s is not None:
        return drain_timeout_s
    default: float = request.app.state.settings.drain_timeout_s
    return default


async def _check_model_file(spec: ModelSpec) -> None:
    """A GGUF that is not there, or a hub name the hub lacks, is the admin's typo: say so now rather than
    after three failed loads (or a download)."""
    reference = spec.hub_reference()
    if reference is not None:
        await asyncio.to_thread(hub.check, reference, spec.revision)
    elif spec.backend == "llama_cpp":
        try:
            spec.model_file()
        except FileNotFoundError as exc:
            raise InvalidRequest(str(exc), param="path") from None


async def _answer_load(
    pools: PoolManager, model: ManagedModel, wait: bool, timeout_s: float, ok: int, undo_by_removing: bool
) -> JSONResponse:
    if model.pool is None:  # lazy: registered, loads on its first request
        return _answer(model, ok)
    if not wait:
        return _answer(model, 202)
    state = await model.wait_loaded(timeout_s)
    if state == "failed":  # the spec's file, as it is, will never load: the request's fault, and nothing retries it
        failed = InvalidRequest(f"Model '{model.spec.name}' could not be loaded: {model.reason}", param="path")
        if undo_by_removing:
            await asyncio.shield(pools.remove(model.spec.name, 0))
        raise failed
    if state == "unhealthy":
        reason = model.reason or "its workers keep failing"
        name = model.spec.name
        undo = pools.remove(name, 0) if undo_by_removing else pools.unload(name, 0)
        await asyncio.shield(undo)
        raise ModelUnavailable(f"Model '{name}' could not be loaded: {reason}")
    return _answer(model, ok if state == "ready" else 202)
