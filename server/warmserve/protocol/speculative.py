"""The `speculative` extension of chat and completions requests: prompt-lookup speculative decoding.

`true` asks for the model's settings, `false` turns it off, and an object sets them; whatever is left
out comes from the model's spec. Only the speed changes, never the text (README, "Speculative decoding").
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

# The same bounds as a model spec's (model_options.SpeculativeOptions), which protocol cannot import.
MAX_DRAFT_TOKENS = 62
MAX_NGRAM = 16


class SpeculativeParam(BaseModel):
    """How a request drafts: `type` ngram (prompt lookup) or off, and the sizes."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ngram", "off"] = Field("ngram", description="ngram: prompt lookup; off: plain decoding.")
    draft_tokens: int | None = Field(None, ge=1, le=MAX_DRAFT_TOKENS, description="Tokens drafted per step at most.")
    ngram_min: int | None = Field(None, ge=1, le=MAX_NGRAM, description="Shortest run of last tokens looked up.")
    ngram_max: int | None = Field(None, ge=1, le=MAX_NGRAM, description="Longest run of last tokens looked up.")

    @model_validator(mode="after")
    def _ngram_order(self) -> SpeculativeParam:
        if self.ngram_min is not None and self.ngram_max is not None and self.ngram_min > self.ngram_max:
            raise ValueError("ngram_min must not exceed ngram_max")
        return self


SpeculativeField = StrictBool | SpeculativeParam
