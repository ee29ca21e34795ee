import json

import pytest

from warmserve.api.streaming import sse_data, text_chunk_renderer
from warmserve.protocol import ChatChunkChoice, ChatCompletionChunk, ChatDelta


def full(text: str) -> str:
    choice = ChatChunkChoice(index=0, delta=ChatDelta(content=text))
    return sse_data(ChatCompletionChunk(id="c1", created=1, model='m"x', choices=[choice]).model_dump(mode="json"))


@pytest.mark.parametrize("text", ["", "hello", ' "quoted" \\ back', "line\nbreak\t", "é€😀", "\u0000"])
def test_the_fast_token_chunk_is_byte_for_byte_the_models_rendering(text):
    assert text_chunk_renderer(full)(text) == full(text)
    assert json.loads(full(text).removeprefix("data: "))["choices"][0]["delta"]["content"] == text
