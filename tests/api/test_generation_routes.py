"""Chat and completions answers, checked against the `openai` SDK's own types."""

import json

from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello world"}]
# The fake renders "role: content" lines and answers with the words reversed.
CHAT_ANSWER = "world hello say user: brief be system:"


async def test_models_list_shows_the_served_model_and_its_workers(sdk):
    models = await sdk.models.list()
    [card] = models.data
    assert card.id == "fake"
    extra = card.model_extra
    assert (extra["state"], extra["ready_workers"], extra["workers"]) == ("ready", 1, 1)
    assert (extra["backend"], extra["context_length"]) == ("fake", 256)
    assert extra["capabilities"]["logprobs"] is True
    assert (extra["capabilities"]["messages"], extra["capabilities"]["responses"]) == (True, True)
    assert extra["capabilities"]["suffix"] is True  # the fake reports fill-in-the-middle tokens
    assert (await sdk.models.retrieve("fake")).id == "fake"


async def test_chat_completion_has_openai_shape_and_exact_usage(sdk, client):
    answer = await sdk.chat.completions.create(model="fake", messages=MESSAGES, temperature=0, max_tokens=7)
    assert answer.id.startswith("chatcmpl-")
    assert answer.object == "chat.completion"
    assert answer.model == "fake"
    [choice] = answer.choices
    assert (choice.index, choice.finish_reason, choice.message.role) == (0, "length", "assistant")
    assert choice.message.content == CHAT_ANSWER
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        7,
        7,
        14,
    )
    raw = await client.post("/v1/chat/completions", json={"model": "fake", "messages": MESSAGES, "max_tokens": 3})
    ChatCompletion.model_validate(raw.json(), strict=False)
    assert raw.json()["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert raw.json()["choices"][0]["finish_reason"] == "length"


async def test_chat_stream_sends_role_then_content_then_finish_then_usage_then_done(client):
    body = {
        "model": "fake",
        "messages": MESSAGES,
        "max_completion_tokens": 4,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = await client.post("/v1/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(line.removeprefix("data: "))) for line in lines[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks[1:-2])
    assert content == "world hello say user:"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 4
    assert len({c.id for c in chunks}) == 1


async def test_chat_stream_without_include_usage_has_no_usage_chunk(sdk):
    stream = await sdk.chat.completions.create(model="fake", messages=MESSAGES, max_tokens=2, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_stop_strings_cut_the_output_and_finish_with_stop(sdk):
    answer = await sdk.chat.completions.create(model="fake", messages=MESSAGES, stop=[" say"], temperature=0)
    assert answer.choices[0].message.content == "world hello"
    assert answer.choices[0].finish_reason == "stop"


async def test_completions_answer_each_prompt_as_its_own_choice(sdk, client):
    answer = await sdk.completions.create(model="fake", prompt=["a b c", "d e"], max_tokens=3, temperature=0)
    assert [(c.index, c.text) for c in answer.choices] == [(0, "c b a"), (1, "e d e")]
    assert answer.usage.prompt_tokens == 5
    assert answer.usage.completion_tokens == 6
    raw = await client.post("/v1/completions", json={"model": "fake", "prompt": "x y"})
    Completion.model_validate(raw.json())
    assert raw.json()["object"] == "text_completion"


async def test_completion_stream_tags_chunks_with_their_choice(sdk):
    stream = await sdk.completions.create(
        model="fake",
        prompt=["a b", "c d"],
        max_tokens=2,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    texts = {0: "", 1: ""}
    finishes = {}
    for chunk in chunks[:-1]:
        [choice] = chunk.choices
        texts[choice.index] += choice.text
        if choice.finish_reason:
            finishes[choice.index] = choice.finish_reason
    assert texts == {0: "b a", 1: "d c"}
    assert finishes == {0: "length", 1: "length"}
    assert chunks[-1].usage.total_tokens == 8


async def test_seeded_sampling_is_reproducible(sdk):
    def ask(seed):
        return sdk.completions.create(model="fake", prompt="a b c d e f g", temperature=1, seed=seed, max_tokens=7)

    first, again = (await ask(3)).choices[0].text, (await ask(3)).choices[0].text
    assert first == again
    assert sorted(first.split()) == list("abcdefg")


async def test_tokenize_counts_with_the_models_tokenizer_and_chat_template(client):
    prompt = await client.post("/v1/tokenize", json={"model": "fake", "prompt": "a b c"})
    assert prompt.status_code == 200
    assert prompt.json()["count"] == 3
    assert len(prompt.json()["tokens"]) == 3
    chat = await client.post("/v1/tokenize", json={"model": "fake", "messages": MESSAGES})
    assert chat.json()["count"] == 7  # the same count a chat completion reports as prompt_tokens


async def test_tokenize_needs_exactly_one_input_and_a_known_model(client):
    both = {"model": "fake", "prompt": "a", "messages": MESSAGES}
    assert (await client.post("/v1/tokenize", json=both)).status_code == 400
    assert (await client.post("/v1/tokenize", json={"model": "fake"})).status_code == 400
    assert (await client.post("/v1/tokenize", json={"model": "nope", "prompt": "a"})).status_code == 404
    assert (await client.post("/v1/tokenize", json={"model": "fake", "prompt": " "})).status_code == 400


async def test_n_gives_several_choices_and_a_seed_makes_each_repeatable(sdk, client):
    question = [{"role": "user", "content": "one two three four five six"}]
    answer = await sdk.chat.completions.create(model="fake", messages=question, n=3, seed=10, max_tokens=6)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    for i, choice in enumerate(answer.choices):  # choice i is what seed 10 + i gives alone
        alone = await sdk.chat.completions.create(model="fake", messages=question, seed=10 + i, max_tokens=6)
        assert choice.message.content == alone.choices[0].message.content
    assert len({c.message.content for c in answer.choices}) > 1
    assert answer.usage.prompt_tokens == 7  # counted once, as OpenAI does
    assert answer.usage.completion_tokens == 18
    too_many = await client.post("/v1/chat/completions", json={"model": "fake", "messages": question, "n": 17})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["param"] == "n"


async def test_n_streams_every_choice_with_its_index(sdk):
    stream = await sdk.chat.completions.create(
        model="fake",
        messages=MESSAGES,
        n=2,
        max_tokens=3,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    texts: dict[int, str] = {0: "", 1: ""}
    roles, finishes = set(), {}
    for chunk in chunks[:-1]:
        [choice] = chunk.choices
        roles.add((choice.index, choice.delta.role))
        texts[choice.index] += choice.delta.content or ""
        if choice.finish_reason:
            finishes[choice.index] = choice.finish_reason
    assert {(0, "assistant"), (1, "assistant")} <= roles
    assert texts == {0: "world hello say", 1: "world hello say"}
    assert finishes == {0: "length", 1: "length"}
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 6)


async def test_completions_with_n_order_choices_by_prompt_then_choice(sdk):
    answer = await sdk.completions.create(model="fake", prompt=["a b", "c d"], n=2, max_tokens=2, temperature=0)
    assert [(c.index, c.text) for c in answer.choices] == [(0, "b a"), (1, "b a"), (2, "d c"), (3, "d c")]
    assert answer.usage.prompt_tokens == 4
    assert answer.usage.completion_tokens == 8
