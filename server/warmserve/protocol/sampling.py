"""Sampling controls beyond OpenAI's, as llama-server, vLLM and Ollama accept them in a request body.

One mixin, so every generating request (chat, completions, Responses, Messages) and a model's
defaults in its spec (`model_options.SamplingDefaults`) share the same names, bounds and descriptions.
Every field is optional: None means "not set", and the model's default or the neutral value
(the sampler off) applies. The `openai` client sends them through `extra_body`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

# Beyond any vocabulary or context: larger values are typos, not requests.
MAX_TOP_K = 1_000_000
MAX_WINDOW = 1_048_576  # ModelSpec.n_ctx's bound
MAX_REPETITION_PENALTY = 10.0


def _utf8(text: str) -> str:
    """llama.cpp takes the breakers as UTF-8; JSON allows a lone surrogate ("\\ud800"), UTF-8 does not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode; it contains a lone surrogate") from None
    return text


SequenceBreaker = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_utf8)]  # llama.cpp cuts at 40


class SamplingControls(BaseModel):
    """Samplers local models' cards recommend (top_k, min_p, typical_p, repetition_penalty) and the ones
    only llama.cpp has (DRY, XTC, mirostat)."""

    top_k: int | None = Field(
        None,
        ge=-1,
        le=MAX_TOP_K,
        description="Sample from the k most likely tokens only; 0 or -1 (vLLM's spelling): off.",
    )
    min_p: float | None = Field(
        None, ge=0.0, le=1.0, description="Drop tokens less likely than min_p times the likeliest; 0: off."
    )
    typical_p: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Locally typical sampling: keep the tokens closest to the expected surprise up to this "
        "probability mass; 1: off.",
    )
    repetition_penalty: float | None = Field(
        None,
        gt=0.0,
        le=MAX_REPETITION_PENALTY,
        description="Divide the positive logits (multiply the negative ones) of tokens already in the prompt "
        "or output by this; 1: off, above 1 discourages repetition.",
    )
    repeat_last_n: int | None = Field(
        None,
        ge=-1,
        le=MAX_WINDOW,
        description="How many of the last tokens repetition_penalty looks at; -1 (default): the whole context, "
        "0: none.",
    )
    dry_multiplier: float | None = Field(
        None, ge=0.0, le=100.0, description="llama.cpp: DRY (don't repeat yourself) penalty strength; 0: off."
    )
    dry_base: float | None = Field(
        None, ge=1.0, le=10.0, description="llama.cpp: DRY's penalty grows as dry_base ** (repeat length - allowed)."
    )
    dry_allowed_length: int | None = Field(
        None, ge=0, le=1024, description="llama.cpp: repeated sequences up to this long are not penalised by DRY."
    )
    dry_penalty_last_n: int | None = Field(
        None,
        ge=-1,
        le=MAX_WINDOW,
        description="llama.cpp: how many of the last tokens DRY scans; -1 (default): the whole context, 0: none.",
    )
    dry_sequence_breakers: list[SequenceBreaker] | None = Field(
        None,
        max_length=32,
        description='llama.cpp: strings that end a repeated sequence for DRY (default "\\n", ":", "\\"", "*").',
    )
    xtc_probability: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="llama.cpp: XTC (exclude top choices) runs at a token with this probability; 0: off.",
    )
    xtc_threshold: float | None = Field(
        None,
        ge=0.0,
        le=0.5,
        description="llama.cpp: XTC removes every token above this probability but the least likely of them "
        "(default 0.1).",
    )
    mirostat: Literal[0, 1, 2] | None = Field(
        None,
        description="llama.cpp: Mirostat sampling, version 1 or 2, instead of top_k / top_p / min_p / "
        "typical_p / XTC; 0: off.",
    )
    mirostat_tau: float | None = Field(
        None, gt=0.0, le=100.0, description="llama.cpp: Mirostat's target surprise in bits (default 5)."
    )
    mirostat_eta: float | None = Field(
        None, gt=0.0, le=1.0, description="llama.cpp: Mirostat's learning rate (default 0.1)."
    )


# What Mirostat replaces, with the values that leave each off.
MIROSTAT_REPLACES: dict[str, tuple[object, ...]] = {
    "top_k": (0, -1),
    "top_p": (1.0,),
    "min_p": (0.0,),
    "typical_p": (1.0,),
    "xtc_probability": (0.0,),
}


def is_on(values: Mapping[str, Any], name: str) -> bool:
    """Whether `values` (field name -> value, None where unset) turns the sampler `name` on."""
    value = values.get(name)
    return value is not None and value not in MIROSTAT_REPLACES.get(name, (0,))


def mirostat_conflict(values: Mapping[str, Any]) -> str | None:
    """The first sampler `values` turn on beside Mirostat, which would silently have no effect."""
    if not is_on(values, "mirostat"):
        return None
    return next((name for name in MIROSTAT_REPLACES if is_on(values, name)), None)
