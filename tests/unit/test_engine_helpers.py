"""Engine-neutral helpers of backends/base.py: fill in the middle, given tokens, logit bias."""

import pytest

from warmserve.backends.base import check_logit_bias, fill_in_middle, given_tokens
from warmserve.errors import InvalidRequest
from warmserve.generation import GenerationRequest, SamplingParams


def encode(text: str) -> list[int]:
    return [ord(c) for c in text]


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
    check_logit_bias(GenerationRequest(prompt="x", sampling=SamplingParams(logit_bias=((9, 1.0),))), 10)
    with pytest.raises(InvalidRequest, match="token 10"):
        check_logit_bias(GenerationRequest(prompt="x", sampling=SamplingParams(logit_bias=((10, 1.0),))), 10)
