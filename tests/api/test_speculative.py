"""The `speculative` extension over the wire: accepted on chat and completions, bad values a 400 naming it."""

import httpx
import pytest

MESSAGES = [{"role": "user", "content": "one two three"}]


@pytest.mark.parametrize(
    ("route", "body"),
    [("/v1/chat/completions", {"messages": MESSAGES}), ("/v1/completions", {"prompt": "one two three"})],
)
@pytest.mark.parametrize(
    "value", [True, False, {"type": "off"}, {"type": "ngram", "draft_tokens": 16, "ngram_min": 1, "ngram_max": 6}]
)
async def test_chat_and_completions_accept_it(client: httpx.AsyncClient, route: str, body: dict, value: object):
    response = await client.post(route, json={"model": "fake", "speculative": value, **body})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "value",
    [
        {"type": "eagle"},
        {"draft_tokens": 0},
        {"draft_tokens": 63},
        {"ngram_min": 4, "ngram_max": 2},
        {"ngram_min": 13},  # above the model's ngram_max (12)
        {"draft": 4},
        "yes",
    ],
)
async def test_a_bad_value_is_a_400_naming_it(client: httpx.AsyncClient, value: object):
    body = {"model": "fake", "messages": MESSAGES, "speculative": value}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith("speculative")
