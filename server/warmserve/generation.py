"""What one generation asks for and what it yields, independent of any engine.

These frozen dataclasses cross the process boundary between the API process and
a worker (inside the envelopes of `pool.messages`), so they hold only plain data.
They live beneath api, pool and backends so that every layer can name them
without importing an engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from warmserve.embedding import Embedded
from warmserve.errors import ErrorInfo
from warmserve.reasoning import ReasoningStart

Role = Literal["system", "user", "assistant", "tool"]
Effort = Literal["none", "minimal", "low", "medium", "high"]  # OpenAI's reasoning effort levels
THINKING_BUDGET_LIMIT = 1_048_576  # thinking tokens a request or spec may set; beyond any model's context
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ToolCallData:
    """A function call an assistant made on an earlier turn; `arguments` is JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    tool_calls: tuple[ToolCallData, ...] = ()  # assistant turns that called functions
    tool_call_id: str | None = None  # tool turns: the call this result answers
    name: str | None = None  # tool turns: the function that produced the result


@dataclass(frozen=True)
class Constraint:
    """The output must match `grammar`, enforced token by token by the engine.

    `grammar` is an llguidance grammar (JSON text), built and validated in the API
    process (`api/grammar.py`), so a worker only compiles text it knows is valid.
    `param` names the request parameter it came from, for error messages.
    """

    grammar: str
    param: str


# llama-server's default: DRY lets a repeat run across these, so a list or a dialogue can repeat its markup.
DRY_SEQUENCE_BREAKERS = ("\n", ":", '"', "*")


@dataclass(frozen=True)
class SamplingParams:
    """OpenAI sampling parameters, with OpenAI's defaults, and the extensions local models use.

    `max_tokens=None` means "until the context is full"; `seed=None` means random.
    Engines apply them in one order: logit bias, repetition penalty and DRY (over the prompt and
    the output), presence and frequency penalties (over the output), then temperature; at
    temperature 0 the likeliest token, else top_k, typical_p, top_p, min_p and XTC (or Mirostat
    instead of all five) narrow the tempered distribution before the seeded draw.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None  # None: none; k >= 0: each token's logprob and its k most likely alternatives
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    # Extensions (protocol/sampling.py says what each does); every default here means "off".
    top_k: int = 0
    min_p: float = 0.0
    typical_p: float = 1.0
    repetition_penalty: float = 1.0
    repeat_last_n: int = -1  # -1: the whole context
    # llama.cpp only:
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = -1
    dry_sequence_breakers: tuple[str, ...] = DRY_SEQUENCE_BREAKERS
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    mirostat: int = 0  # 0 (off), 1 or 2
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1

    @property
    def greedy(self) -> bool:
        """Every draw is the likeliest token: temperature 0, or top_k 1."""
        return self.temperature == 0 or self.top_k == 1


@dataclass(frozen=True)
class ReasoningRequest:
    """What a request asks of a reasoning model's thinking (chat `reasoning_effort`, the Responses
    API's `reasoning.effort`, Anthropic's `thinking`).

    `budget`: thinking tokens before the engine closes the block itself; 0 is no thinking, None
    no limit. `effort` goes to chat templates that take `reasoning_effort`. `param` names the
    request parameter, for the 400 of a model that cannot think.
    """

    budget: int | None
    effort: str | None = None
    param: str = "reasoning_effort"


@dataclass(frozen=True)
class Speculation:
    """Prompt-lookup speculative decoding for one request (the `speculative` extension, llama.cpp).

    The engine drafts up to `draft_tokens` tokens by finding the last `ngram_max` (down to `ngram_min`)
    tokens earlier in the prompt or output and proposing what followed them there, and verifies the
    draft in one decode. The output is the one plain decoding draws; only its speed changes.
    `draft_tokens` 0 is off.
    """

    draft_tokens: int
    ngram_min: int = 6
    ngram_max: int = 12


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its bytes, log probability and the most likely alternatives."""

    token: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


@dataclass(frozen=True)
class Continuation:
    """Where a request was when its worker died, so that another worker carries on from there.

    The engine prefills `tokens` after the prompt and replays them through the request's output
    state (UTF-8, stop strings, grammar, penalties, the token budget), then decodes on; of the
    replayed text it sends only what the client has not had: past `shown_chars` characters and
    `shown_logprobs` logprobs. `logprobs` are the tokens' own, when the request asked for them.
    Draws after the replay use `seed` (see `sampling`).
    """

    tokens: tuple[int, ...]
    logprobs: tuple[TokenLogprob, ...] = ()
    shown_chars: int = 0
    shown_logprobs: int = 0
    seed: int | None = None

    @staticmethod
    def seed_after(seed: int | None, drawn: int) -> int | None:
        """The seed a seeded request samples with once resumed after `drawn` tokens: the same request
        cut at the same token always continues the same way (the earlier draws are not replayed)."""
        return None if seed is None else (seed + drawn * 0x9E3779B9) % 2**32


@dataclass(frozen=True)
class GenerationRequest:
    """Exactly one of a raw `prompt` or its token ids (completions), or chat `messages`."""

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    prompt_tokens: tuple[int, ...] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stream: bool = True  # False: the worker sends the text once, at the end, not per token
    suffix: str | None = None  # completions: fill in the middle between `prompt` and this
    tools: str | None = None  # JSON list of OpenAI tool definitions, rendered into the prompt
    constraint: Constraint | None = None
    # The API response (and choice) this generation serves: its id in the log lines of every process.
    response_id: str | None = None
    resume: Continuation | None = None  # set by the pool when a worker died while running the request
    reasoning: ReasoningRequest | None = None  # None: the model's default (its spec's budget)
    template_kwargs: str | None = None  # chat_template_kwargs: a JSON object of extra template variables
    adapter: str | None = None  # the LoRA adapter (its model id) the request runs with; None: the base model
    speculative: Speculation | None = None  # None: the model's default (its spec's `speculative`)

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.prompt, self.messages, self.prompt_tokens)) != 1:
            raise ValueError("a GenerationRequest needs exactly one of prompt, messages or prompt_tokens")

    @property
    def input_param(self) -> str:
        """The request parameter that holds the input, for error messages."""
        return "messages" if self.messages is not None else "prompt"

    @property
    def draws(self) -> SamplingParams:
        """The sampling an engine draws tokens with: the request's, with a resumed request's own seed."""
        if self.resume is None or self.sampling.seed is None:
            return self.sampling
        return replace(self.sampling, seed=self.resume.seed)


@dataclass(frozen=True)
class Started:
    """The engine accepted the request: its prompt fits and decoding begins."""

    prompt_tokens: int
    cached_tokens: int = 0  # of those, the ones whose KV cells are reused (known before the prefill)
    reasoning: ReasoningStart | None = None  # a reasoning model's markers and where its output begins


@dataclass(frozen=True)
class Drawn:
    """A token the engine drew for a request (not its end), sent before the text it makes.

    The pool keeps these to continue the request elsewhere if its worker dies; they never
    reach the client.
    """

    token: int
    logprob: TokenLogprob | None = None


@dataclass(frozen=True)
class TextDelta:
    """New text, with the logprobs of the tokens it completes when the request asked for them."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ModelFacts:
    """What a loaded engine reports about its model, for /v1/models and for validating requests."""

    context_length: int  # tokens per request: prompt + output
    vocab_size: int
    fill_in_middle: bool = False  # the vocabulary has prefix/suffix/middle tokens (completions `suffix`)
    reasoning: bool = False  # a reasoning model whose thinking the server splits from the answer


@dataclass(frozen=True)
class PromptCacheStats:
    """A worker's host-memory prompt cache: counters since it started, and what it holds now."""

    hits: int = 0  # requests that got a prefix's KV cells back from the cache
    misses: int = 0  # requests that reused nothing, from their slot or the cache
    evictions: int = 0  # saved states dropped to stay within the budget
    restored_tokens: int = 0  # prompt tokens restored rather than computed
    bytes: int = 0
    entries: int = 0
    tokens: int = 0  # tokens the saved states hold (with `bytes`: what a token costs)
    budget_bytes: int = 0


@dataclass(frozen=True)
class Finished:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens whose KV cells were reused, not recomputed
    stop_sequence: str | None = None  # the request's stop string that ended the output, if one did
    reasoning_tokens: int = 0  # of the completion tokens, those in the thinking block
    drafted_tokens: int = 0  # speculative decoding: tokens proposed by the drafter and verified
    accepted_tokens: int = 0  # of those, the ones the model drew as well


@dataclass(frozen=True)
class Failed:
    error: ErrorInfo


@dataclass(frozen=True)
class Tokenized:
    """The answer to a tokenize-only request: the prompt's token ids, nothing generated."""

    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Detokenized:
    """The answer to a detokenize request: the text of the given token ids."""

    text: str


# Embedded (warmserve.embedding) answers an embedding request on the same streams.
GenerationEvent = Started | Drawn | TextDelta | Finished | Failed | Tokenized | Detokenized | Embedded
