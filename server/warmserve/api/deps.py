"""FastAPI dependencies: everything a route needs comes from `app.state`, built by create_app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from warmserve.errors import ShuttingDown
from warmserve.pool import PoolManager


def get_pools(request: Request) -> PoolManager:
    """The model pools, refusing new work once the server has started to drain."""
    if request.app.state.lifecycle.draining:
        raise ShuttingDown("The server is shutting down; send the request to another replica.")
    pools: PoolManager = request.app.state.pools
    return pools


Pools = Annotated[PoolManager, Depends(get_pools)]
