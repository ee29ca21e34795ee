"""GET /v1/models: what is served, and how many workers hold each model now."""

from __future__ import annotations

from fastapi import APIRouter

from warmserve.api.deps import Pools
from warmserve.api.errors import ERROR_RESPONSES
from warmserve.pool import Pool
from warmserve.protocol import ModelCard, ModelList

router = APIRouter()


def _card(pool: Pool, created: int) -> ModelCard:
    return ModelCard(
        id=pool.spec.name,
        created=created,
        state=pool.state,
        ready_workers=pool.ready_workers,
        workers=pool.spec.workers,
    )


@router.get("/v1/models", responses=ERROR_RESPONSES)
async def list_models(pools: Pools) -> ModelList:
    return ModelList(data=[_card(pool, pools.created) for pool in pools.pools.values()])


@router.get("/v1/models/{model:path}", responses=ERROR_RESPONSES)
async def retrieve_model(model: str, pools: Pools) -> ModelCard:
    return _card(pools.get(model), pools.created)
