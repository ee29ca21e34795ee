"""Requests into tokens, and the checks on token ids a client sends, written once for every engine.

An engine describes its tokenizer as a `Vocabulary` (how to encode text, decode ids and
render a chat); the flow over it (token ids as given, chat, fill in the middle, plain
text, embedding inputs) and the range checks live here, so every engine answers the
same request with the same tokens' treatment and the same errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from warmserve.backends.reasoning import ReasoningModel, Thinking, chat_plan, close_text, shape_prompt
from warmserve.embedding import EmbedRequest
from warmserve.errors import ContextLengthExceeded, InvalidRequest
from warmserve.generation import ChatMessage, GenerationRequest
from warmserve.model_options import ReasoningOptions
from warmserve.reasoning import ReasoningStart


@dataclass(frozen=True)
class Prompt:
    """A request's prompt tokens and, for a reasoning model's chat, where its output starts and its budget."""

    tokens: list[int]
    reasoning: ReasoningStart | None = None
    budget: int | None = None  # thinking tokens; None: no limit


class Vocabulary(ABC):
    """One engine's tokenizer, as the shared request flow needs it."""

    size: int  # token ids run from 0 to size - 1
    fim: tuple[int, int, int] | None = None  # fill-in-the-middle prefix, suffix and middle tokens
    fim_head: tuple[int, ...] = ()  # tokens before a fill-in-the-middle prompt (a BOS, for one)
    reasoning: ReasoningModel | None = None  # set by `use_reasoning` when the model thinks
    _default_budget: int | None = None  # thinking tokens of a request that sets no effort
    _close_tokens: list[int] | None = None  # what a spent budget feeds: "\n" + close marker + "\n\n"

    @abstractmethod
    def encode(self, text: str, special: bool) -> list[int]:
        """Text into token ids; `special`: with the model's special tokens around it (BOS)."""

    @abstractmethod
    def decode(self, tokens: list[int]) -> str:
        """Token ids into text, special tokens written out; the ids are known to be in range."""

    @property
    @abstractmethod
    def template_source(self) -> str:
        """The chat template in use (the spec's override, the model's own, or the fallback)."""

    @abstractmethod
    def render(self, messages: tuple[ChatMessage, ...], tools_json: str | None, variables: dict[str, Any]) -> str:
        """The prompt text asking for the next assistant turn, through the chat template (`variables`:
        extra template variables, such as `enable_thinking`)."""

    @abstractmethod
    def encode_chat(self, text: str) -> list[int]:
        """A rendered chat prompt as tokens (special tokens the template wrote are parsed, not doubled)."""

    def use_reasoning(self, options: ReasoningOptions) -> None:
        """Find the model's thinking markers (spec, template, vocabulary); call once the template is known."""
        self.reasoning = ReasoningModel.detect(options, self.template_source, self.single_token)
        self._default_budget = options.budget

    def single_token(self, text: str) -> bool:
        """Whether `text` is one token of this vocabulary (a special marker such as `<think>`)."""
        return len(self.encode(text, False)) == 1

    def chat_prompt(self, request: GenerationRequest) -> Prompt:
        """A chat through the template, opened or closed for thinking as the request asks (backends/reasoning.py)."""
        assert request.messages is not None
        plan = chat_plan(self.reasoning, request, self._default_budget)
        text = self.render(request.messages, request.tools, plan.variables)
        if self.reasoning is None:
            return Prompt(self.encode_chat(text))
        text, start = shape_prompt(self.reasoning, text, plan.budget, request.constraint is not None)
        return Prompt(self.encode_chat(text), start, plan.budget)

    def thinking(self, prompt: Prompt, constrained: bool) -> Thinking | None:
        """One request's thinking tracker; None when its output cannot hold a thinking block."""
        if prompt.reasoning is None or prompt.reasoning.phase == "answer" or self.reasoning is None:
            return None
        if self._close_tokens is None:
            self._close_tokens = self.encode(close_text(self.reasoning), False)
        return Thinking(prompt.reasoning, prompt.budget, self._close_tokens, answer_required=constrained)

    def infill(self, request: GenerationRequest) -> list[int]:
        """Prefix-suffix-middle order: the model writes what goes between `prompt` and `suffix`."""
        return [*self.fim_head, *fill_in_middle(request, self.fim, lambda text: self.encode(text, False))]

    def prompt(self, request: GenerationRequest) -> Prompt:
        """The prompt: ids as given, a chat, an infill or plain text; never empty."""
        if request.prompt_tokens is not None:
            return Prompt(given_tokens(request, self.size))
        if request.messages is not None:
            prompt = self.chat_prompt(request)
        elif request.suffix is not None:
            prompt = Prompt(self.infill(request))
        else:
            assert request.prompt is not None
            prompt = Prompt(self.encode(request.prompt, True))
        if not prompt.tokens:
            raise InvalidRequest("The prompt is empty.", param=request.input_param)
        return prompt

    def tokenize(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens, as `prompt` makes them."""
        return self.prompt(request).tokens

    def detokenize(self, tokens: list[int]) -> str:
        check_in_vocabulary(tokens, self.size, "tokens", "The request names token")
        return self.decode(tokens)

    def check_logit_bias(self, request: GenerationRequest) -> None:
        """Token ids in `logit_bias` must exist in this model's vocabulary."""
        biased = (token for token, _ in request.sampling.logit_bias)
        check_in_vocabulary(biased, self.size, "logit_bias", "logit_bias names token")

    def embed_inputs(self, request: EmbedRequest, limit: int) -> list[list[int]]:
        """Every embedding input as tokens (texts with special tokens, ids as given), each checked."""
        inputs = [self.encode(item, True) if isinstance(item, str) else list(item) for item in request.inputs]
        for index, tokens in enumerate(inputs):
            check_input_tokens(tokens, index, limit, self.size)
        return inputs


def check_in_vocabulary(tokens: Iterable[int], vocab_size: int, param: str, subject: str) -> None:
    """The one range check of client-sent ids: an InvalidRequest naming the first unknown one."""
    unknown = next((token for token in tokens if not 0 <= token < vocab_size), None)
    if unknown is not None:
        raise InvalidRequest(
            f"{subject} {unknown}, which is outside this model's vocabulary "
            f"({vocab_size} tokens, 0 to {vocab_size - 1}).",
            param=param,
        )


def given_tokens(request: GenerationRequest, vocab_size: int) -> list[int]:
    """A prompt sent as token ids: used as they are, once checked against the vocabulary."""
    assert request.prompt_tokens is not None
    tokens = list(request.prompt_tokens)
    if not tokens:
        raise InvalidRequest("The prompt is empty.", param="prompt")
    if request.suffix is not None:
        raise InvalidRequest("'suffix' needs the prompt as text, not token ids.", param="suffix")
    check_in_vocabulary(tokens, vocab_size, "prompt", "The prompt holds token")
    return tokens


def fill_in_middle(
    request: GenerationRequest, fim: tuple[int, int, int] | None, encode: Callable[[str], list[int]]
) -> list[int]:
    """Prefix-suffix-middle order over the model's prefix, suffix and middle tokens.

    `fim` None (the model has none) is a 400 naming `suffix`; `encode` tokenizes text
    without special tokens.
    """
    if fim is None:
        raise InvalidRequest(
            "This model has no fill-in-the-middle tokens, so 'suffix' is not supported for it.", param="suffix"
        )
    assert request.prompt is not None
    assert request.suffix is not None
    prefix, suffix, middle = fim
    return [prefix, *encode(request.prompt), suffix, *encode(request.suffix), middle]


def check_input_tokens(tokens: Sequence[int], index: int, limit: int, vocab_size: int) -> None:
    """An embedding input the model can read whole: not empty, within its context, known token ids."""
    if not tokens:
        raise InvalidRequest(f"Input {index} is empty after tokenization; send text or token ids.", param="input")
    if len(tokens) > limit:
        raise ContextLengthExceeded(
            f"This model's maximum context length for embeddings is {limit} tokens, however input {index} "
            f"has {len(tokens)} tokens. Please reduce the length of the input.",
            param="input",
        )
    check_in_vocabulary(tokens, vocab_size, "input", f"Input {index} holds token")


def output_budget(prompt_tokens: int, max_tokens: int | None, n_ctx: int, param: str) -> int:
    """How many tokens a request may generate, or ContextLengthExceeded with the numbers."""
    if max_tokens is None:
        if prompt_tokens < n_ctx:
            return n_ctx - prompt_tokens
        max_tokens = 1
    if prompt_tokens + max_tokens > n_ctx:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the {param}, {max_tokens} in "
            f"the completion). Please reduce the length of the {param} or completion.",
            param=param,
        )
    return max_tokens


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share (a slot's cells or a saved state reused for a prompt)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
