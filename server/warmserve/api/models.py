"""GET /v1/models: what is served, what each model can do, and how many workers hold it now.

Each LoRA adapter is listed as a model of its own, after the models, with `parent` naming its base.
"""

from __future__ import annotations

from fastapi import APIRouter

from warmserve.api.deps import Pools
from warmserve.api.errors import ERROR_RESPONSES
from warmserve.pool import Pool
from warmserve.pool.adapter_view import AdapterModel
from warmserve.protocol import ModelCapabilities, ModelCard, ModelList

router = APIRouter()


def capabilities(pool: Pool) -> ModelCapabilities:
    facts = pool.facts
    tasks = pool.spec.effective_tasks()
    generates = "generate" in tasks
    return ModelCapabilities(
        chat=generates,
        completions=generates,
        embeddings="embed" in tasks,
        messages=generates,
        responses=generates,
        tools=generates,
        json_schema=generates,
        logprobs=generates,
        logit_bias=generates,
        echo=generates,
        suffix=None if facts is None or not generates else facts.fill_in_middle,
        reasoning=None if facts is None or not generates else facts.reasoning,
    )


def _card(pool: Pool, created: int) -> ModelCard:
    facts = pool.facts
    return ModelCard(
        id=pool.spec.name,
        created=created,
        parent=pool.base.spec.name if isinstance(pool, AdapterModel) else None,
        backend=pool.spec.backend,
        context_length=None if facts is None else facts.context_length,
        capabilities=capabilities(pool),
        state=pool.state,
        reason=pool.reason if pool.state in ("failed", "unhealthy") else None,
        ready_workers=pool.ready_workers,
        workers=pool.spec.workers,
    )


@router.get("/v1/models", responses=ERROR_RESPONSES)
async def list_models(pools: Pools) -> ModelList:
    served: list[Pool] = [*pools.pools.values(), *pools.adapters()]
    return ModelList(data=[_card(pool, pools.created) for pool in served])


@router.get("/v1/models/{model:path}", responses=ERROR_RESPONSES)
async def retrieve_model(model: str, pools: Pools) -> ModelCard:
    return _card(pools.route(model), pools.created)
