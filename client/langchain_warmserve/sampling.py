"""warmserve's sampling controls beyond OpenAI's, as typed fields of both model classes.

The server takes them in the request body (what the `openai` client calls `extra_body`), so a set
field goes there; an unset one is not sent, and the model's defaults on the server (its spec's
`sampling` block) or the sampler's "off" apply. The server bounds every value and answers a 400
naming a parameter that is out of range, or that the model's backend lacks (DRY, XTC and Mirostat
are llama.cpp's).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SamplingExtensions(BaseModel):
    top_k: int | None = Field(default=None, ge=-1)
    """Sample from the k most likely tokens only; 0 or -1: off."""
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    """Drop tokens less likely than min_p times the likeliest; 0: off."""
    typical_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Locally typical sampling's probability mass; 1: off."""
    repetition_penalty: float | None = Field(default=None, gt=0.0)
    """Penalise tokens already in the prompt or output (transformers' formula); 1: off."""
    repeat_last_n: int | None = Field(default=None, ge=-1)
    """How many of the last tokens `repetition_penalty` looks at; -1: the whole context."""
    dry_multiplier: float | None = Field(default=None, ge=0.0)
    """llama.cpp models: DRY repetition penalty strength; 0: off."""
    dry_base: float | None = Field(default=None, ge=1.0)
    """llama.cpp models: DRY's penalty base."""
    dry_allowed_length: int | None = Field(default=None, ge=0)
    """llama.cpp models: repeats up to this long are not penalised by DRY."""
    dry_penalty_last_n: int | None = Field(default=None, ge=-1)
    """llama.cpp models: how many of the last tokens DRY scans; -1: the whole context."""
    dry_sequence_breakers: list[str] | None = None
    """llama.cpp models: strings that end a repeated sequence for DRY."""
    xtc_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    """llama.cpp models: chance that XTC (exclude top choices) runs at a token; 0: off."""
    xtc_threshold: float | None = Field(default=None, ge=0.0, le=0.5)
    """llama.cpp models: XTC removes the tokens above this probability but the least likely of them."""
    mirostat: Literal[0, 1, 2] | None = None
    """llama.cpp models: Mirostat version 1 or 2 instead of top_k / top_p / min_p / typical_p / XTC."""
    mirostat_tau: float | None = Field(default=None, gt=0.0)
    """llama.cpp models: Mirostat's target surprise."""
    mirostat_eta: float | None = Field(default=None, gt=0.0)
    """llama.cpp models: Mirostat's learning rate."""

    def _with_extensions(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` with the set fields added to its `extra_body` (a field wins over the same key there)."""
        names = SamplingExtensions.model_fields
        extensions = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if not extensions:
            return params
        return {**params, "extra_body": {**(params.get("extra_body") or {}), **extensions}}
