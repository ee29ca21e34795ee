"""Probes: /health says the process is alive, /ready that every worker holds its model."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from warmserve.api.deps import Pools

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Some model is still loading or has no live worker."}})
async def ready(pools: Pools) -> JSONResponse:
    models = {
        name: {"ready_workers": pool.ready_workers, "workers": pool.spec.workers}
        for name, pool in pools.pools.items()
    }
    status = "ready" if pools.ready else "loading"
    return JSONResponse({"status": status, "models": models}, status_code=200 if pools.ready else 503)
