"""Probes for Kubernetes: /health says the process is alive, /ready that it should get traffic.

/ready is 200 while every model has at least one ready worker and the server is not
draining; its body says more: "ready" once every worker holds its model, "degraded"
while some are (re)starting.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from warmserve.pool import PoolManager

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Loading, unhealthy, or draining."}})
async def ready(request: Request) -> JSONResponse:
    pools: PoolManager = request.app.state.pools
    draining = request.app.state.lifecycle.draining
    models = {
        name: {"state": pool.state, "ready_workers": pool.ready_workers, "workers": pool.spec.workers}
        for name, pool in pools.pools.items()
    }
    if draining:
        status = "draining"
    elif pools.ready:
        status = "ready"
    elif pools.serving:
        status = "degraded"
    else:
        status = "loading"
    ok = pools.serving and not draining
    return JSONResponse({"status": status, "models": models}, status_code=200 if ok else 503)
