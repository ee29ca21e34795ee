"""POST /v1/completions: prompts (text or token ids), legacy logprobs, answers and chunks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
)

from warmserve.protocol.base import MAX_TOKENS_LIMIT, FinishReasonOut, SamplingFields, Text, TokenIds, Usage, WireModel


class CompletionRequest(SamplingFields):
    prompt: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=64)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=64)]
    ) = Field(description="One prompt, or a list (at most 64) answered as one choice each; text or token ids.")
    max_tokens: int | None = Field(16, ge=1, le=MAX_TOKENS_LIMIT, description="OpenAI's default for completions is 16.")
    logprobs: int | None = Field(
        None, ge=0, le=5, description="Log probabilities of each output token and of this many alternatives."
    )
    echo: bool = Field(False, description="Return the prompt before the completion.")
    best_of: int | None = Field(
        None, ge=1, le=16, description="Candidates per prompt; the n with the highest logprob per token are returned."
    )

    def candidates(self) -> int:
        """Generations per prompt: `best_of` when set, else `n`."""
        return self.best_of if self.best_of is not None else self.n

    suffix: Text | None = Field(
        None, description="Text after the completion: the model fills in the middle (needs a model with FIM tokens)."
    )

    def prompts(self) -> list[str | list[int]]:
        """Each prompt as text or as token ids."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(item, int) for item in self.prompt):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return list(self.prompt)  # type: ignore[arg-type]


class CompletionLogprobs(WireModel):
    """Completions (the legacy shape): parallel lists, and each token's offset in the choice's text."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(WireModel):
    index: int
    text: str
    finish_reason: FinishReasonOut | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(WireModel):
    """Both the whole completion and, with `usage=None` until the end, a stream chunk."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
