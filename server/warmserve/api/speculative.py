"""A request's `speculative` extension resolved against its model: what the engine drafts with.

Unset leaves the model's default to the engine (its spec's `speculative`, which other wire formats
get too). A model whose engine cannot speculate exactly answers a request that asks for it with a
400 naming the parameter, rather than ignoring it: the transformers backend has no speculation, and
llama.cpp on a CPU without flash attention computes verify rows differently from single rows.
"""

from __future__ import annotations

from warmserve.config import ModelSpec
from warmserve.errors import InvalidRequest, UnsupportedParameter
from warmserve.generation import Speculation
from warmserve.protocol.speculative import SpeculativeField, SpeculativeParam

PARAM = "speculative"
OFF = Speculation(draft_tokens=0)


def speculation(value: SpeculativeField | None, spec: ModelSpec) -> Speculation | None:
    """The engine's settings for this request; None: the model's default."""
    if value is None:
        return None
    param = value if isinstance(value, SpeculativeParam) else SpeculativeParam()
    if value is False or param.type == "off":
        return OFF
    if spec.backend == "transformers":
        raise UnsupportedParameter(
            f"The parameter '{PARAM}' is not supported by model '{spec.name}': speculative decoding is built for "
            "llama.cpp models only.",
            param=PARAM,
        )
    if spec.backend == "llama_cpp" and spec.n_gpu_layers == 0 and spec.flash_attn == "off":
        raise InvalidRequest(
            f"Model '{spec.name}' runs with flash_attn off, where speculative decoding would change the answers "
            "(verify rows round differently from one-token decodes); serve it with flash_attn auto or on.",
            param=PARAM,
        )
    options = spec.speculative
    ngram_min = options.ngram_min if param.ngram_min is None else param.ngram_min
    ngram_max = options.ngram_max if param.ngram_max is None else param.ngram_max
    if ngram_min > ngram_max:
        raise InvalidRequest(
            f"'{PARAM}': ngram_min ({ngram_min}) must not exceed ngram_max ({ngram_max}), the model's own where "
            "the request leaves one out.",
            param=PARAM,
        )
    draft_tokens = options.draft_tokens if param.draft_tokens is None else param.draft_tokens
    return Speculation(draft_tokens, ngram_min, ngram_max)
