"""Engine-neutral helpers of backends/tokens.py: the prompt flow, fill in the middle, given tokens, id checks."""

from typing import Any

import pytest

from warmserve.backends.tokens import Vocabulary, fill_in_middle, given_tokens
from warmserve.embedding import EmbedRequest
from warmserve.errors import ContextLengthExceeded, InvalidRequest
from warmserve.generation import ChatMessage, GenerationRequest, SamplingParams


def encode(text: str) -> list[int]:
    return [ord(c) for c in text]


class Letters(Vocabulary):
    """Characters as tokens, BOS = 1, a chat as `role:content` lines."""

    size = 200
    fim = (2, 3, 4)
    fim_head = (1,)

    def encode(self, text: str, special: bool) -> list[int]:
        return ([1] if special else []) + encode(text)

    def decode(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)

    template_source = ""

    def render(self, messages: tuple[ChatMessage, ...], tools_json: str | None, variables: dict[str, Any]) -> str:
        return "".join(f"{m.role}:{m.content}" for m in messages)

    def encode_chat(self, text: str) -> list[int]:
        return self.encode(text, False)


def test_one_prompt_flow_for_ids_chats_infills_and_text():
    vocab = Letters()
    assert vocab.tokenize(GenerationRequest(prompt_tokens=(5, 6))) == [5, 6]
    assert vocab.tokenize(GenerationRequest(messages=(ChatMessage("user", "a"),))) == encode("user:a")
    assert vocab.tokenize(GenerationRequest(prompt="a", suffix="b")) == [1, 2, 97, 3, 98, 4]
    assert vocab.tokenize(GenerationRequest(prompt="a")) == [1, 97]
    assert vocab.detokenize([104, 105]) == "hi"
    with pytest.raises(InvalidRequest) as empty:
        vocab.tokenize(GenerationRequest(messages=()))
    assert empty.value.param == "messages"
    with pytest.raises(InvalidRequest, match="token 200") as unknown:
        vocab.detokenize([5, 200])
    assert unknown.value.param == "tokens"


def test_embedding_inputs_are_encoded_with_special_tokens_and_checked():
    vocab = Letters()
    assert vocab.embed_inputs(EmbedRequest(("ab", (7, 8))), limit=3) == [[1, 97, 98], [7, 8]]
    with pytest.raises(ContextLengthExceeded):
        vocab.embed_inputs(EmbedRequest(("abc",)), limit=3)
    with pytest.raises(InvalidRequest, match="outside this model's vocabulary"):
        vocab.embed_inputs(EmbedRequest(((7, -1),)), limit=3)


def test_fill_in_middle_puts_prefix_then_suffix_then_the_middle_token():
    request = GenerationRequest(prompt="ab", suffix="c")
    assert fill_in_middle(request, (1, 2, 3), encode) == [1, 97, 98, 2, 99, 3]


def test_fill_in_middle_without_fim_tokens_is_400_naming_suffix():
    with pytest.raises(InvalidRequest) as caught:
        fill_in_middle(GenerationRequest(prompt="ab", suffix="c"), None, encode)
    assert caught.value.param == "suffix"


def test_given_tokens_are_checked_against_the_vocabulary():
    assert given_tokens(GenerationRequest(prompt_tokens=(1, 2)), 10) == [1, 2]
    for request, param in [
        (GenerationRequest(prompt_tokens=(1, 10)), "prompt"),
        (GenerationRequest(prompt_tokens=()), "prompt"),
        (GenerationRequest(prompt_tokens=(1,), suffix="x"), "suffix"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            given_tokens(request, 10)
        assert caught.value.param == param


def test_logit_bias_must_name_tokens_of_the_vocabulary():
    vocab = Letters()
    vocab.check_logit_bias(GenerationRequest(prompt="x", sampling=SamplingParams(logit_bias=((199, 1.0),))))
    with pytest.raises(InvalidRequest, match="token 200") as unknown:
        vocab.check_logit_bias(GenerationRequest(prompt="x", sampling=SamplingParams(logit_bias=((200, 1.0),))))
    assert unknown.value.param == "logit_bias"
