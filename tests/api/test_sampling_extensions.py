"""The sampling extensions (top_k, min_p, ..., DRY, XTC, Mirostat) over the fake backend: bounds, routes, defaults.

The fake answers with the prompt's words reversed, shuffled by the seed unless sampling is greedy
(temperature 0 or top_k 1), so a model's defaults can be seen to apply. Their effect on real models
is tested in tests/e2e/test_sampling_real.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import serve_in_process
from tests.conftest import fake_settings
from warmserve.api.sampling import sampling_fields
from warmserve.config import ModelSpec
from warmserve.errors import UnsupportedParameter
from warmserve.protocol import ChatCompletionRequest

PROMPT = "one two three four five six seven eight"
MESSAGES = [{"role": "user", "content": PROMPT}]
EVERY_EXTENSION: dict[str, Any] = {
    "top_k": 20,
    "min_p": 0.05,
    "typical_p": 0.9,
    "repetition_penalty": 1.1,
    "repeat_last_n": 64,
    "dry_multiplier": 0.8,
    "dry_base": 1.75,
    "dry_allowed_length": 2,
    "dry_penalty_last_n": -1,
    "dry_sequence_breakers": ["\n", ":"],
    "xtc_probability": 0.5,
    "xtc_threshold": 0.1,
}
BODIES = {
    "/v1/chat/completions": {"messages": MESSAGES, "max_tokens": 4},
    "/v1/completions": {"prompt": PROMPT, "max_tokens": 4},
    "/v1/responses": {"input": PROMPT, "max_output_tokens": 4},
    "/v1/messages": {"messages": MESSAGES, "max_tokens": 4},
}


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error of OpenAI's shape, or of Anthropic's (no param: its message names it)."""
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize("route", list(BODIES))
async def test_every_route_accepts_every_extension(client, route):
    body = {"model": "fake", **BODIES[route], **EVERY_EXTENSION}
    assert (await client.post(route, json=body)).status_code == 200
    mirostat = {"model": "fake", **BODIES[route], "mirostat": 2, "mirostat_tau": 4.0, "mirostat_eta": 0.2}
    assert (await client.post(route, json=mirostat)).status_code == 200


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("top_k", -2),
        ("top_k", 1.5),
        ("top_k", 1_000_001),
        ("min_p", -0.1),
        ("min_p", 1.01),
        ("typical_p", 0),
        ("typical_p", 1.5),
        ("repetition_penalty", 0),
        ("repetition_penalty", 10.5),
        ("repeat_last_n", -2),
        ("repeat_last_n", 2_000_000),
        ("dry_multiplier", -1),
        ("dry_base", 0.5),
        ("dry_allowed_length", -1),
        ("dry_penalty_last_n", -2),
        ("dry_sequence_breakers", "\n"),
        ("dry_sequence_breakers", [""]),
        ("dry_sequence_breakers", ["x" * 41]),
        ("xtc_probability", 1.5),
        ("xtc_threshold", 0.6),
        ("mirostat", 3),
        ("mirostat_tau", 0),
        ("mirostat_eta", 0),
        ("mirostat_eta", 2),
    ],
)
async def test_an_out_of_range_value_is_400_naming_it(client, param, value):
    for route in ("/v1/chat/completions", "/v1/completions"):
        response = await client.post(route, json={"model": "fake", **BODIES[route], param: value})
        assert response.status_code == 400
        error = error_of(response)
        assert (error["code"], error["param"].split("[")[0]) == ("invalid_request", param)


async def test_a_sequence_breaker_that_is_no_valid_unicode_is_400_naming_it(client):
    body = '{"model": "fake", "prompt": "a", "dry_multiplier": 0.8, "dry_sequence_breakers": ["\\ud800"]}'
    response = await client.post("/v1/completions", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, error_of(response)["param"]) == (400, "dry_sequence_breakers[0]")


@pytest.mark.parametrize("route", ["/v1/responses", "/v1/messages"])
async def test_the_responses_and_messages_routes_bound_them_too(client, route):
    response = await client.post(route, json={"model": "fake", **BODIES[route], "min_p": 2})
    assert response.status_code == 400
    error = error_of(response)
    assert "min_p" in (error.get("param") or error["message"])


async def test_unknown_samplers_stay_400_naming_them(client):
    for name in ("repeat_penalty", "top_a", "tfs_z"):
        body = {"model": "fake", "messages": MESSAGES, name: 1.1}
        error = error_of(await client.post("/v1/chat/completions", json=body))
        assert (error["code"], error["param"]) == ("unsupported_parameter", name)


async def test_mirostat_with_a_sampler_it_replaces_is_400_naming_that_sampler(client):
    body = {"model": "fake", "messages": MESSAGES, "mirostat": 2, "top_k": 40}
    error = error_of(await client.post("/v1/chat/completions", json=body))
    assert (error["param"], "mirostat" in error["message"]) == ("top_k", True)
    neutral = {"model": "fake", "messages": MESSAGES, "mirostat": 2, "top_k": 0, "top_p": 1.0, "min_p": 0}
    assert (await client.post("/v1/chat/completions", json=neutral)).status_code == 200


async def answer(http: httpx.AsyncClient, **params: Any) -> str:
    body = {"model": "fake", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8, **params}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


async def test_a_models_sampling_defaults_apply_when_the_request_leaves_them_unset():
    greedy_defaults = fake_settings(model={"sampling": {"top_k": 1, "temperature": 1.0}})
    async with serve_in_process(fake_settings()) as plain, serve_in_process(greedy_defaults) as tuned:
        greedy = await answer(plain, temperature=0)
        shuffled = await answer(plain, seed=5)
        assert shuffled != greedy
        assert await answer(tuned, seed=5) == greedy  # top_k 1 from the model's defaults
        assert await answer(tuned, seed=5, top_k=0) == shuffled  # the request's value wins
        assert await answer(tuned, seed=5, top_k=-1) == shuffled


def spec(**sampling: Any) -> ModelSpec:
    return ModelSpec(name="m", backend="fake", sampling=sampling)


def chat(**params: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": MESSAGES, **params})


def test_defaults_fill_only_what_the_request_leaves_unset():
    fields = sampling_fields(chat(temperature=0.2, min_p=0.1), spec(temperature=0.7, top_p=0.8, top_k=20))
    assert fields == {"temperature": 0.2, "top_p": 0.8, "top_k": 20, "min_p": 0.1}
    assert sampling_fields(chat(), ModelSpec(name="m", backend="fake")) == {}


def test_choosing_mirostat_or_a_sampler_it_replaces_drops_the_models_defaults_of_the_other():
    assert sampling_fields(chat(mirostat=2), spec(top_k=20, top_p=0.9, temperature=0.7)) == {
        "mirostat": 2,
        "temperature": 0.7,
    }
    assert sampling_fields(chat(top_k=5), spec(mirostat=1, mirostat_tau=3.0)) == {"top_k": 5}


def test_a_model_spec_cannot_combine_mirostat_with_a_sampler_it_replaces():
    with pytest.raises(ValueError, match=r"sampling\.min_p"):
        spec(mirostat=2, min_p=0.1)


@pytest.mark.parametrize(("param", "value"), [("dry_multiplier", 0.8), ("xtc_probability", 0.5), ("mirostat", 1)])
def test_the_transformers_backend_refuses_llama_cpp_samplers_naming_them(param, value):
    transformers = ModelSpec(name="hf", backend="transformers")
    with pytest.raises(UnsupportedParameter) as info:
        sampling_fields(chat(**{param: value}), transformers)
    assert info.value.param == param
    assert "transformers" in info.value.message
    assert sampling_fields(chat(**{param: 0}), transformers) == {param: 0}  # off is no request
    with pytest.raises(ValueError, match=param):
        ModelSpec(name="hf", backend="transformers", sampling={param: value})


def test_vllms_top_k_of_minus_one_is_off_and_breakers_become_a_tuple():
    fields = sampling_fields(chat(top_k=-1, dry_sequence_breakers=["a", "b"]), spec())
    assert fields == {"top_k": 0, "dry_sequence_breakers": ("a", "b")}
