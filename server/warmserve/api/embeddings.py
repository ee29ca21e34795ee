"""POST /v1/embeddings: one unit-length vector per input, as floats or base64."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from warmserve.api.deps import Pools
from warmserve.api.disconnect import until_disconnected
from warmserve.api.errors import ERROR_RESPONSES
from warmserve.api.params import ignored_header, require_task, unsupported
from warmserve.embedding import EmbedRequest, base64_vector, unpack_vector
from warmserve.protocol import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage

router = APIRouter()


@router.post("/v1/embeddings", responses=ERROR_RESPONSES)
async def create_embeddings(
    body: EmbeddingRequest, request: Request, response: Response, pools: Pools
) -> EmbeddingResponse:
    response.headers.update(ignored_header(unsupported(body, request.app.state.settings.unsupported_parameters)))
    pool = pools.route(body.model)
    require_task(pool.spec, "embed")
    inputs = tuple(item if isinstance(item, str) else tuple(item) for item in body.inputs())
    result = await until_disconnected(request, pool.embed(EmbedRequest(inputs, dimensions=body.dimensions)))
    encode = base64_vector if body.encoding_format == "base64" else unpack_vector
    return EmbeddingResponse(
        data=[Embedding(index=i, embedding=encode(vector)) for i, vector in enumerate(result.vectors)],
        model=body.model,
        usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
