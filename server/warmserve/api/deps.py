"""FastAPI dependencies: everything a route needs comes from `app.state`, built by create_app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from warmserve.pool import PoolManager


def get_pools(request: Request) -> PoolManager:
    pools: PoolManager = request.app.state.pools
    return pools


Pools = Annotated[PoolManager, Depends(get_pools)]
