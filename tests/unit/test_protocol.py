import pytest
from pydantic import ValidationError

from warmserve.protocol import ChatCompletionRequest, ChatDelta, CompletionRequest


def chat(**fields):
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_text_parts_are_joined_into_one_message_text():
    body = chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    assert body.messages[0].text() == "ab"


def test_image_parts_are_rejected():
    with pytest.raises(ValidationError):
        chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])


def test_max_completion_tokens_wins_over_deprecated_max_tokens():
    assert chat(max_tokens=5, max_completion_tokens=7).output_limit() == 7
    assert chat(max_tokens=5).output_limit() == 5
    assert chat().output_limit() is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 2.5), ("top_p", -0.1), ("max_tokens", 0), ("presence_penalty", 3), ("stop", ["a"] * 5)],
)
def test_out_of_range_values_fail_validation(field, value):
    with pytest.raises(ValidationError) as info:
        chat(**{field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_stop_accepts_a_string_or_a_list():
    assert chat(stop="x").stop_sequences() == ("x",)
    assert chat(stop=["x", "y"]).stop_sequences() == ("x", "y")
    assert chat().stop_sequences() == ()


def test_unsupported_parameters_are_listed_but_hints_and_neutral_values_are_not():
    body = chat(best_of=2, modalities=["audio"], user="u", metadata={"a": "b"}, service_tier="auto", tools=None)
    assert body.unsupported_sent() == ["best_of", "modalities"]
    assert chat(n=2, logprobs=False, response_format={"type": "text"}).unsupported_sent() == []
    assert chat(frobnicate=3).unsupported_sent() == ["frobnicate"]


def test_completion_defaults_to_openais_16_tokens_and_lists_prompts():
    body = CompletionRequest.model_validate({"model": "m", "prompt": ["a", "b"]})
    assert body.max_tokens == 16
    assert body.prompts() == ["a", "b"]


def test_prompts_of_token_ids_are_one_prompt_or_a_list_of_them():
    assert CompletionRequest.model_validate({"model": "m", "prompt": [1, 2, 3]}).prompts() == [[1, 2, 3]]
    assert CompletionRequest.model_validate({"model": "m", "prompt": [[1], [2, 3]]}).prompts() == [[1], [2, 3]]
    with pytest.raises(ValidationError):
        CompletionRequest.model_validate({"model": "m", "prompt": [1, "a"]})


def test_stream_delta_serialises_only_the_keys_it_carries():
    assert ChatDelta(content="x").model_dump() == {"content": "x"}
    assert ChatDelta(role="assistant", content="").model_dump() == {"role": "assistant", "content": ""}
    assert ChatDelta().model_dump() == {}
