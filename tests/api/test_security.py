"""API keys, CORS, and hostile input: each a clear 4xx, the server unharmed."""

import json
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import serve_in_process
from tests.conftest import fake_settings
from warmserve.config import load_settings

CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 2}


@pytest.fixture
async def locked(tmp_path: Path):
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nkey-from-file\n")
    settings = fake_settings(server={"api_keys": ["key-one", "key-two"], "api_key_file": str(key_file)})
    async with serve_in_process(settings) as http:
        yield http


@pytest.mark.parametrize("key", ["key-one", "key-two", "key-from-file"])
async def test_any_configured_key_opens_the_api(locked, key):
    response = await locked.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "key-one"}, {"Authorization": "Basic key-one"}]
)
async def test_a_missing_or_wrong_key_is_an_openai_401(locked, headers):
    for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("POST", "/v1/tokenize")):
        response = await locked.request(method, path, json=CHAT, headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


async def test_health_probes_and_metrics_stay_open(locked):
    for path in ("/health", "/ready", "/metrics"):
        assert (await locked.get(path)).status_code == 200


def test_keys_come_from_flags_environment_or_file(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WARMSERVE_API_KEYS", '["env-key"]')
    assert load_settings().accepted_api_keys() == ["env-key"]
    assert load_settings(api_keys=["flag-key"]).accepted_api_keys() == ["flag-key"]
    from warmserve.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["models", "--api-key", "a", "--api-key", "b"])
    assert settings_from_args(args).accepted_api_keys() == ["a", "b"]


async def test_cors_is_closed_by_default_and_opens_for_configured_origins(client):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = await client.options("/v1/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    settings = fake_settings(server={"cors_origins": ["https://app.example"]})
    async with serve_in_process(settings) as http:
        allowed = await http.options("/v1/chat/completions", headers={**preflight, "Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        denied = await http.options("/v1/chat/completions", headers=preflight)
        assert "access-control-allow-origin" not in denied.headers


async def test_a_body_over_the_limit_is_413_declared_or_streamed():
    async with serve_in_process(fake_settings(server={"max_body_bytes": 2048})) as http:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
        declared = await http.post("/v1/chat/completions", json=big)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "payload_too_large"

        async def chunks():
            body = json.dumps(big).encode()
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        streamed = await http.post(
            "/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert (await http.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def post_raw(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "fake", "messages": [{"role": "user", "content": "\xff\xfe bad utf-8"}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"model": "fake", "messages": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
        b'{"model": "fake", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1e400}',
        b'{"model": "fake", "messages": [{"role": "user", "content": "x"}], "max_tokens": 99999999999999999999}',
        b'{"model": "fake", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
        b'{"model": "fake", "messages": [{"role": "user", "content": "x"}], "seed": -1e30}',
        b'{"model": ["fake"], "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "fake", "messages": [{"role": "user"}]}',
        b'{"model": "fake", "messages": [{"role": "user", "content": null}]}',
        b'"just a string"',
        b"",
    ],
)
async def test_hostile_bodies_get_a_clear_400_and_the_server_is_unharmed(client, body):
    response = await post_raw(client, body)
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_too_many_messages_is_400():
    async with serve_in_process(fake_settings(server={"max_messages": 3})) as http:
        messages = [{"role": "user", "content": "hi"}] * 4
        response = await http.post("/v1/chat/completions", json={**CHAT, "messages": messages})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "messages"
