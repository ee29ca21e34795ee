"""POST /v1/tokenize and /v1/detokenize: the model's own tokenizer, for clients like LangChain."""

from __future__ import annotations

from fastapi import APIRouter

from warmserve.api.deps import Pools
from warmserve.api.errors import ERROR_RESPONSES
from warmserve.api.params import chat_messages
from warmserve.errors import InvalidRequest
from warmserve.generation import GenerationRequest
from warmserve.protocol import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse

router = APIRouter()


@router.post("/v1/tokenize", responses=ERROR_RESPONSES)
async def tokenize(body: TokenizeRequest, pools: Pools) -> TokenizeResponse:
    """Chat messages are counted as the model will see them: rendered by its chat template."""
    if (body.prompt is None) == (body.messages is None):
        raise InvalidRequest("Send exactly one of 'prompt' or 'messages'.", param="prompt")
    pool = pools.route(body.model)
    if body.messages is not None:
        request = GenerationRequest(messages=chat_messages(body.messages))
    else:
        request = GenerationRequest(prompt=body.prompt)
    tokens = await pool.tokenize(request)
    return TokenizeResponse(model=body.model, tokens=tokens, count=len(tokens))


@router.post("/v1/detokenize", responses=ERROR_RESPONSES)
async def detokenize(body: DetokenizeRequest, pools: Pools) -> DetokenizeResponse:
    """Token ids back to text, special tokens written out; an id the model lacks is a 400."""
    text = await pools.route(body.model).detokenize(body.tokens)
    return DetokenizeResponse(model=body.model, text=text)
