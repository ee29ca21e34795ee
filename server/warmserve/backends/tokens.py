"""Requests into tokens, and the checks on token ids a client sends, written once for every engine.

An engine describes its tokenizer as a `Vocabulary` (how to encode text, decode ids and
render a chat); the flow over it (token ids as given, chat, fill in the middle, plain
text, embedding inputs) and the range checks live here, so every engine answers the
same request with the same tokens' treatment and the same errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from warmserve.embedding import EmbedRequest
from warmserve.errors import ContextLengthExceeded, InvalidRequest
from warmserve.generation import ChatMessage, GenerationRequest


class Vocabulary(ABC):
    """One engine's tokenizer, as the shared request flow needs it."""

    size: int  # token ids run from 0 to size - 1
    fim: tuple[int, int, int] | None = None  # fill-in-the-middle prefix, suffix and middle tokens
    fim_head: tuple[int, ...] = ()  # tokens before a fill-in-the-middle prompt (a BOS, for one)

    @abstractmethod
    def encode(self, text: str, special: bool) -> list[int]:
        """Text into token ids; `special`: with the model's special tokens around it (BOS)."""

    @abstractmethod
    def decode(self, tokens: list[int]) -> str:
        """Token ids into text, special tokens written out; the ids are known to be in range."""

    @abstractmethod
    def chat(self, messages: tuple[ChatMessage, ...], tools_json: str | None) -> list[int]:
        """The prompt asking for the next assistant turn, through the model's chat template."""

    def infill(self, request: GenerationRequest) -> list[int]:
        """Prefix-suffix-middle order: the model writes what goes between `prompt` and `suffix`."""
        return [*self.fim_head, *fill_in_middle(request, self.fim, lambda text: self.encode(text, False))]

    def tokenize(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens: ids as given, a chat, an infill or plain text; never empty."""
        if request.prompt_tokens is not None:
            return given_tokens(request, self.size)
        if request.messages is not None:
            tokens = self.chat(request.messages, request.tools)
        elif request.suffix is not None:
            tokens = self.infill(request)
        else:
            assert request.prompt is not None
            tokens = self.encode(request.prompt, True)
        if not tokens:
            raise InvalidRequest("The prompt is empty.", param=request.input_param)
        return tokens

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
