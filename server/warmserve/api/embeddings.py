"""POST /v1/embeddings: one unit-length vector per input, as floats or base64."""

from __future__ import annotations

from fastapi import APIRouter, Request

from warmserve.api.deps import Pools
from warmserve.api.disconnect import until_disconnected
from warmserve.api.errors import ERROR_RESPONSES
from warmserve.api.params import require_task
from warmserve.embedding import EmbedRequest, base64_vector, unpack_vector
from warmserve.errors import UnsupportedParameter
from warmserve.protocol import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage

router = APIRouter()


@router.post("/v1/embeddings", responses=ERROR_RESPONSES)
async def create_embeddings(body: EmbeddingRequest, request: Request, pools: Pools) -> EmbeddingResponse:
    unsupported = body.unsupported_parameters()
    if unsupported:
        also = f" (also unsupported here: {', '.join(unsupported[1:])})" if len(unsupported) > 1 else ""
        raise UnsupportedParameter(
            f"The parameter '{unsupported[0]}' is not supported by this server{also}.", param=unsupported[0]
        )
    pool = pools.get(body.model)
    require_task(pool.spec, "embed")
    inputs = tuple(item if isinstance(item, str) else tuple(item) for item in body.inputs())
    result = await until_disconnected(request, pool.embed(EmbedRequest(inputs, dimensions=body.dimensions)))
    encode = base64_vector if body.encoding_format == "base64" else unpack_vector
    return EmbeddingResponse(
        data=[Embedding(index=i, embedding=encode(vector)) for i, vector in enumerate(result.vectors)],
        model=body.model,
        usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
