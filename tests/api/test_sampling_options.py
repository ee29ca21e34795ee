"""logprobs, logit_bias, echo, suffix, detokenize and the lenient parameter policy, over the fake backend.

The fake answers with the prompt's words reversed and reports made-up but consistent logprobs,
so every shape and every join between chunks can be checked exactly.
"""

import json

import httpx
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion

from tests.api.conftest import serve_in_process
from tests.conftest import fake_settings

PROMPT = "one two three four"
MESSAGES = [{"role": "user", "content": PROMPT}]


def sse_payloads(text: str) -> list[dict]:
    lines = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


async def test_chat_logprobs_describe_every_output_token_with_its_alternatives(sdk):
    answer = await sdk.chat.completions.create(
        model="fake", messages=MESSAGES, temperature=0, max_tokens=4, logprobs=True, top_logprobs=2
    )
    [choice] = answer.choices
    content = choice.logprobs.content
    assert "".join(entry.token for entry in content) == choice.message.content
    assert len(content) == answer.usage.completion_tokens == 4
    for entry in content:
        assert entry.logprob < 0
        assert bytes(entry.bytes).decode() == entry.token
        assert len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].token == entry.token  # the fake's choice is its likeliest token
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob


async def test_chat_without_logprobs_has_null_logprobs(sdk):
    answer = await sdk.chat.completions.create(model="fake", messages=MESSAGES, max_tokens=2)
    assert answer.choices[0].logprobs is None


async def test_streamed_chat_logprobs_join_to_the_streamed_text(client):
    body = {"model": "fake", "messages": MESSAGES, "max_tokens": 5, "logprobs": True, "stream": True, "n": 2}
    response = await client.post("/v1/chat/completions", json=body)
    texts, tokens = ["", ""], ["", ""]
    for payload in sse_payloads(response.text):
        for choice in payload["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
            if choice["logprobs"]:
                tokens[choice["index"]] += "".join(entry["token"] for entry in choice["logprobs"]["content"])
    assert texts == tokens
    assert all(texts)


async def test_after_a_stop_string_only_tokens_with_shown_text_keep_their_logprobs(sdk):
    answer = await sdk.chat.completions.create(
        model="fake", messages=MESSAGES, max_tokens=8, logprobs=True, temperature=0, stop=["three"]
    )
    [choice] = answer.choices
    tokens = [entry.token for entry in choice.logprobs.content]
    assert (choice.finish_reason, choice.message.content) == ("stop", "four ")
    assert tokens == ["four", " three"]  # " three" shows its space; "two", "one" after it are dropped


async def test_top_logprobs_without_logprobs_is_400(client):
    body = {"model": "fake", "messages": MESSAGES, "top_logprobs": 2}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "top_logprobs"


async def test_completion_logprobs_use_the_legacy_parallel_lists_with_text_offsets(client):
    body = {"model": "fake", "prompt": PROMPT, "max_tokens": 3, "logprobs": 2, "temperature": 0}
    completion = Completion.model_validate((await client.post("/v1/completions", json=body)).json())
    [choice] = completion.choices
    logprobs = choice.logprobs
    assert "".join(logprobs.tokens) == choice.text
    assert len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == len(logprobs.text_offset) == 3
    pairs = zip(logprobs.tokens, logprobs.text_offset, strict=True)
    assert logprobs.text_offset == [choice.text.index(token, offset) for token, offset in pairs]
    assert all(len(top) <= 2 for top in logprobs.top_logprobs)


async def test_streamed_completion_logprob_offsets_continue_across_chunks(client):
    body = {"model": "fake", "prompt": PROMPT, "max_tokens": 4, "logprobs": 0, "stream": True}
    response = await client.post("/v1/completions", json=body)
    text, offsets, tokens = "", [], []
    for payload in sse_payloads(response.text):
        for choice in payload["choices"]:
            text += choice["text"]
            if choice["logprobs"]:
                offsets += choice["logprobs"]["text_offset"]
                tokens += choice["logprobs"]["tokens"]
    assert "".join(tokens) == text
    assert [text[o : o + len(t)] for o, t in zip(offsets, tokens, strict=True)] == tokens


async def test_echo_puts_each_prompt_before_its_completion(client):
    body = {"model": "fake", "prompt": ["a b", "c d e"], "max_tokens": 2, "echo": True, "temperature": 0}
    completion = Completion.model_validate((await client.post("/v1/completions", json=body)).json())
    assert [c.text for c in completion.choices] == ["a bb a", "c d ee d"]
    streamed = await client.post("/v1/completions", json={**body, "stream": True})
    texts = ["", ""]
    for payload in sse_payloads(streamed.text):
        for choice in payload["choices"]:
            texts[choice["index"]] += choice["text"]
    assert texts == ["a bb a", "c d ee d"]


async def test_echo_with_logprobs_is_400_naming_echo(client):
    body = {"model": "fake", "prompt": PROMPT, "echo": True, "logprobs": 1}
    response = await client.post("/v1/completions", json=body)
    assert (response.status_code, response.json()["error"]["param"]) == (400, "echo")


async def test_suffix_reaches_the_engine(client):
    # The fake fills in the middle by reading prompt and suffix as one text.
    body = {"model": "fake", "prompt": "a b", "suffix": "c", "max_tokens": 3, "temperature": 0}
    completion = Completion.model_validate((await client.post("/v1/completions", json=body)).json())
    assert completion.choices[0].text == "c b a"


async def test_logit_bias_naming_a_token_outside_the_vocabulary_is_400(client):
    body = {"model": "fake", "messages": MESSAGES, "logit_bias": {"9999999": 5}}
    response = await client.post("/v1/chat/completions", json=body)
    assert (response.status_code, response.json()["error"]["param"]) == (400, "logit_bias")
    ok = await client.post("/v1/chat/completions", json={**body, "logit_bias": {"17": -100}})
    assert ok.status_code == 200


async def test_detokenize_names_tokens_and_rejects_unknown_ids(client):
    answer = await client.post("/v1/detokenize", json={"model": "fake", "tokens": [5, 7]})
    assert answer.json() == {"model": "fake", "text": "<5> <7>"}
    unknown = await client.post("/v1/detokenize", json={"model": "fake", "tokens": [5, 10**8]})
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (400, "tokens")


async def test_strict_policy_rejects_and_lenient_policy_drops_and_names_unsupported_parameters():
    body = {"model": "fake", "messages": MESSAGES, "max_tokens": 2, "modalities": ["audio"], "prediction": {}}
    async with serve_in_process(fake_settings(server={"unsupported_parameters": "ignore"})) as lenient:
        response = await lenient.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        assert response.headers["x-warmserve-ignored-parameters"] == "modalities, prediction"
        ChatCompletion.model_validate(response.json())
        streamed = await lenient.post("/v1/completions", json={**body, "prompt": "a", "stream": True})
        assert streamed.headers["x-warmserve-ignored-parameters"] == "messages, modalities, prediction"
        plain = await lenient.post("/v1/chat/completions", json={**body, "modalities": None, "prediction": None})
        assert "x-warmserve-ignored-parameters" not in plain.headers
        embedded = await lenient.post("/v1/embeddings", json={"model": "fake", "input": "a", "truncate": True})
        assert embedded.status_code == 200
        assert embedded.headers["x-warmserve-ignored-parameters"] == "truncate"


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
async def test_strict_policy_is_the_default(client: httpx.AsyncClient, route: str):
    body = {"model": "fake", "messages": MESSAGES, "prompt": "a", "input": "a", "prediction": {}}
    error = (await client.post(route, json=body)).json()["error"]
    assert error["code"] == "unsupported_parameter"
    assert "--unsupported-parameters ignore" in error["message"]


async def test_best_of_returns_the_n_candidates_with_the_highest_logprob_per_token(client):
    # The fake's logprob falls with a token's position mod 3, so answers cut short by the stop score higher.
    body = {"model": "fake", "prompt": ["a b c d", "e f"], "max_tokens": 4, "temperature": 1, "seed": 3, "stop": "c"}
    alone = [
        Completion.model_validate((await client.post("/v1/completions", json={**body, "n": 3, "logprobs": 0})).json())
    ]
    best = Completion.model_validate((await client.post("/v1/completions", json={**body, "n": 1, "best_of": 3})).json())
    assert [c.index for c in best.choices] == [0, 1]
    assert all(c.logprobs is None for c in best.choices)
    candidates = alone[0].choices
    for prompt, choice in enumerate(best.choices):
        group = candidates[prompt * 3 : prompt * 3 + 3]
        scores = {c.text: sum(c.logprobs.token_logprobs) / max(len(c.logprobs.tokens), 1) for c in group}
        assert scores[choice.text] == max(scores.values())
    assert len({c.text for c in candidates[:3]}) > 1  # the candidates differ, so the choice means something
    assert best.usage.completion_tokens == alone[0].usage.completion_tokens  # every candidate is counted


@pytest.mark.parametrize(
    ("extra", "message"), [({"n": 3, "best_of": 2}, "at least"), ({"best_of": 2, "stream": True}, "streamed")]
)
async def test_best_of_below_n_or_streamed_is_400(client, extra, message):
    body = {"model": "fake", "prompt": "a b", **extra}
    error = (await client.post("/v1/completions", json=body)).json()["error"]
    assert (error["param"], message in error["message"]) == ("best_of", True)


async def test_a_prompt_of_token_ids_is_used_as_given_and_echoed_as_text(client):
    body = {"model": "fake", "prompt": [[5, 7], [9]], "max_tokens": 2, "temperature": 0, "echo": True}
    completion = Completion.model_validate((await client.post("/v1/completions", json=body)).json())
    assert [c.text for c in completion.choices] == ["<5> <7><7> <5>", "<9><9> <9>"]
    assert completion.usage.prompt_tokens == 3
    single = await client.post("/v1/completions", json={**body, "prompt": [5, 7]})
    assert single.json()["choices"][0]["text"] == "<5> <7><7> <5>"


@pytest.mark.parametrize("prompt", [[10**8], [[1], []], [1, "a"]])
async def test_bad_token_prompts_are_400_naming_prompt(client, prompt):
    response = await client.post("/v1/completions", json={"model": "fake", "prompt": prompt})
    assert (response.status_code, response.json()["error"]["param"].split(".")[0]) == (400, "prompt")


async def test_each_of_n_choices_echoes_its_own_prompt(client):
    body = {"model": "fake", "prompt": [[5, 7], [9]], "n": 2, "max_tokens": 1, "temperature": 0, "echo": True}
    completion = Completion.model_validate((await client.post("/v1/completions", json=body)).json())
    assert [c.text for c in completion.choices] == ["<5> <7><7>", "<5> <7><7>", "<9><9>", "<9><9>"]
