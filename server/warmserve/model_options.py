"""The option blocks of a model spec (config.ModelSpec): the fake backend's behaviour, what an old
GGML file does not record, a reasoning model's thinking, and sampling defaults. Each is bounded here,
so a spec, a flag and an admin request are checked alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warmserve.generation import THINKING_BUDGET_LIMIT, Effort
from warmserve.protocol.sampling import SamplingControls, is_on

BackendName = Literal["llama_cpp", "transformers", "fake"]


class FakeOptions(BaseModel):
    """Behaviour of the deterministic fake backend, for tests of the API and pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_delay_s: float = Field(0.0, ge=0.0, le=10.0, description="Sleep per generated token.")
    load_delay_s: float = Field(0.0, ge=0.0, le=600.0, description="Sleep before reporting ready.")
    capacity: int | None = Field(
        None, ge=1, le=256, description="Old name of the model's `slots`, still read when `slots` is not set."
    )
    fail_on: str | None = Field(None, description="A prompt containing this fails with a backend error.")
    crash_on: str | None = Field(None, description="A prompt containing this kills the worker process.")
    crash_on_load: bool = Field(False, description="Kill the worker process while it loads.")
    fail_on_load: str | None = Field(
        None, description="Fail every load with this message, as a model file no retry can load would."
    )


class GgmlOptions(BaseModel):
    """What an old GGML/GGJT LLaMA file does not record, for its conversion to GGUF (llama_cpp)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_length: int | None = Field(
        None, ge=64, le=1_048_576, description="Training context; unset: 4096 if named like LLaMA-2, else 2048."
    )
    rms_norm_eps: float | None = Field(
        None, gt=0, le=0.01, description="RMS norm epsilon; unset: 5e-6, what llama.cpp used with these files."
    )


# Thinking tokens per effort level; "high" sets no limit. A model spec can set its own.
DEFAULT_EFFORT_BUDGETS: dict[Effort, int | None] = {"none": 0, "minimal": 128, "low": 512, "medium": 2048, "high": None}


class ReasoningOptions(BaseModel):
    """How a reasoning model's thinking block is found, split from the answer and bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parse: bool = Field(
        True, description="Split the thinking from the answer; false leaves the output one text (and no controls)."
    )
    markers: tuple[str, str] | None = Field(
        None, description="The thinking block's open and close markers; unset = detected from the chat template."
    )
    budget: int | None = Field(
        None,
        ge=0,
        le=THINKING_BUDGET_LIMIT,
        description="Thinking tokens a request that sets no effort may spend; unset = no limit, 0 = no thinking.",
    )
    effort_budgets: dict[Effort, int | None] = Field(
        default_factory=lambda: dict(DEFAULT_EFFORT_BUDGETS),
        description="Thinking tokens per reasoning effort (none, minimal, low, medium, high); null = no limit.",
    )

    @field_validator("markers")
    @classmethod
    def _markers_not_empty(cls, markers: tuple[str, str] | None) -> tuple[str, str] | None:
        if markers is not None and not all(m.strip() for m in markers):
            raise ValueError("reasoning markers must not be empty")
        return markers

    @field_validator("effort_budgets")
    @classmethod
    def _every_effort(cls, budgets: dict[Effort, int | None]) -> dict[Effort, int | None]:
        for effort, budget in budgets.items():
            if budget is not None and not 0 <= budget <= THINKING_BUDGET_LIMIT:
                raise ValueError(f"the budget of effort '{effort}' must be from 0 to {THINKING_BUDGET_LIMIT}")
        return {**DEFAULT_EFFORT_BUDGETS, **budgets, "none": 0}


# Samplers only llama.cpp has, by the field that switches each on: another backend answers a request
# (or refuses a model spec) that turns one on with a 400 naming it.
LLAMA_CPP_SAMPLERS = ("dry_multiplier", "xtc_probability", "mirostat")


def sampler_lacking(backend: BackendName, values: Mapping[str, Any]) -> str | None:
    """The first sampler `values` turn on that `backend` does not have (the fake accepts them all)."""
    if backend != "transformers":
        return None
    return next((name for name in LLAMA_CPP_SAMPLERS if is_on(values, name)), None)


class SamplingDefaults(SamplingControls):
    """A model's sampling defaults, as its model card recommends: each applies when a request leaves
    that parameter unset (Qwen3, for instance: temperature 0.6, top_p 0.95, top_k 20, min_p 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)


# Verify rows of one sequence must stay on CPU flash attention's per-row kernel (at most 63 rows,
# backends/llama/native.FLASH_ATTN_ROW_KERNEL_MAX): the next token plus at most 62 drafted.
MAX_DRAFT_TOKENS = 62
MAX_NGRAM = 16


class SpeculativeOptions(BaseModel):
    """A model's prompt-lookup speculative decoding (llama_cpp): the default of requests that do not set
    `speculative`, and when the engine drafts at all (README, "Speculative decoding").

    Drafting pays only when drafts are accepted and the step has few rows: on a CPU a decode costs nearly
    in proportion to its rows, so a sequence drafts only while at most `max_batch` sequences decode in the
    step and while its drafts keep being accepted (`min_acceptance`); otherwise it pauses. The defaults were
    measured (README, "Speculative decoding"): short n-grams match all over free text and their drafts mostly
    miss, a loss of up to 20 %; a match of 6 or more tokens is nearly always a quote.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ngram", "off"] = Field(
        "ngram", description="ngram: draft from the prompt and output (prompt lookup); off: plain decoding."
    )
    draft_tokens: int = Field(16, ge=1, le=MAX_DRAFT_TOKENS, description="Tokens drafted per step at most.")
    ngram_min: int = Field(6, ge=1, le=MAX_NGRAM, description="Shortest run of last tokens looked up.")
    ngram_max: int = Field(12, ge=1, le=MAX_NGRAM, description="Longest run of last tokens looked up (tried first).")
    max_batch: int = Field(
        1, ge=0, le=256, description="Draft only while at most this many sequences decode in the step; 0 = any."
    )
    min_acceptance: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="A sequence whose recent drafts were accepted less than this pauses drafting for a while.",
    )

    @model_validator(mode="after")
    def _ngram_order(self) -> SpeculativeOptions:
        if self.ngram_min > self.ngram_max:
            raise ValueError("speculative.ngram_min must not exceed speculative.ngram_max")
        return self
