"""/admin/models/{model}/adapters: a model's LoRA adapters, added and removed while it serves.

    GET    /admin/models/{model}/adapters             its adapters: state, requests in flight, spec
    POST   /admin/models/{model}/adapters             add one (body: an `adapters:` entry of warmserve.yaml)
    DELETE /admin/models/{model}/adapters/{adapter}   drain its requests, then unload it

An add answers 201 once every worker of the model has loaded the adapter (202 when the model is
unloaded: the adapter is registered and loads with it). An adapter whose files are missing or do
not fit the model (another base model, inconsistent ranks) is a 400 naming it, and the model and
its other adapters serve on. A name taken by a model or an adapter is a 409. A removal turns new
requests on the adapter away (503 `model_unloading`), lets those in flight finish for up to
`drain_timeout_s`, unloads it from the workers and answers; its id is then a 404. The workers are
never restarted. Registered before the model routes, whose `{model:path}` would take these paths.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from warmserve.adapters import AdapterSpec
from warmserve.admin_protocol import AdapterDeleted, AdminAdapter, AdminAdapterList
from warmserve.api.admin import DrainTimeout, admin_responses, drain_timeout
from warmserve.api.deps import Pools
from warmserve.pool import ManagedModel

router = APIRouter(prefix="/admin", tags=["admin"])


def adapter_info(model: ManagedModel, name: str) -> AdminAdapter:
    spec = model.adapters.get(name)
    assert spec is not None
    state: Literal["loading", "ready", "draining", "unloaded"] = model.adapters.state(name)
    if model.pool is None and state == "ready":
        state = "unloaded"
    return AdminAdapter(
        id=name,
        model=model.spec.name,
        state=state,
        running=model.adapter_in_flight(name).value,
        spec=spec,
    )


@router.get("/models/{model:path}/adapters", responses=admin_responses())
async def list_adapters(model: str, pools: Pools) -> AdminAdapterList:
    managed = pools.get(model)
    return AdminAdapterList(data=[adapter_info(managed, adapter.name) for adapter in managed.adapters.served])


@router.post(
    "/models/{model:path}/adapters",
    status_code=201,
    response_model=AdminAdapter,
    responses=admin_responses(202, AdminAdapter, "The model is unloaded: the adapter loads with it."),
)
async def add_adapter(model: str, adapter: AdapterSpec, pools: Pools) -> JSONResponse:
    managed = await pools.add_adapter(model, adapter)
    info = adapter_info(managed, adapter.name)
    return JSONResponse(info.model_dump(mode="json"), status_code=202 if info.state == "unloaded" else 201)


@router.delete("/models/{model:path}/adapters/{adapter:path}", responses=admin_responses())
async def remove_adapter(
    model: str, adapter: str, request: Request, pools: Pools, drain_timeout_s: float | None = DrainTimeout
) -> AdapterDeleted:
    await pools.remove_adapter(model, adapter, drain_timeout(request, drain_timeout_s))
    return AdapterDeleted(id=adapter, deleted=True)
