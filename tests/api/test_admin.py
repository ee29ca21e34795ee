"""Runtime model management over HTTP: /admin/models, lazy models and idle unloads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import serve_with_workers
from tests.conftest import fake_settings
from warmserve.api import create_app
from warmserve.api.app import drain
from warmserve.config import ModelSpec
from warmserve.metrics import Metrics
from warmserve.pool import ModelPool, Pool
from warmserve.pool.events import Publish

CHAT = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 2}
SECOND = {"name": "second", "backend": "fake", "workers": 1, "n_ctx": 256}


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, **CHAT, **extra}


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    """Poll until `check` holds; fail after `timeout_s` (a bound, not a speed requirement)."""
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.05)


async def pids_gone(pids: list[int]) -> None:
    async def gone() -> bool:
        return not any(process_exists(pid) for pid in pids)

    await eventually(gone)


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An app built here (to reach `app` itself), its lifespan running, and a client for it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warmserve") as http,
    ):
        yield http


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """Admin tests are about worker processes: the fake engine runs in real ones here."""
    async with serve_with_workers(fake_settings()) as http:
        yield http


async def model(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await http.get(f"/admin/models/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_model_added_at_run_time_answers_and_is_gone_after_delete():
    async with serve_with_workers(fake_settings()) as http:
        added = await http.post("/admin/models", json=SECOND)
        assert added.status_code == 201, added.text
        card = added.json()
        assert (card["id"], card["state"], card["source"]) == ("second", "ready", "admin")
        [worker] = card["workers"]
        assert worker["state"] == "ready"
        assert process_exists(worker["pid"])
        answer = await http.post("/v1/chat/completions", json=chat("second"))
        assert answer.status_code == 200
        assert answer.json()["model"] == "second"
        listed = {m["id"]: m for m in (await http.get("/admin/models")).json()["data"]}
        assert set(listed) == {"fake", "second"}
        assert listed["fake"]["source"] == "config"
        assert {m["id"] for m in (await http.get("/v1/models")).json()["data"]} == {"fake", "second"}
        assert 'warmserve_workers_ready{model="second"} 1.0' in (await http.get("/metrics")).text

        deleted = await http.delete("/admin/models/second")
        assert deleted.status_code == 200
        assert deleted.json() == {"id": "second", "object": "model", "deleted": True}
        await pids_gone([worker["pid"]])
        gone = await http.post("/v1/chat/completions", json=chat("second"))
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "model_not_found"
        assert 'model="second"' not in "\n".join(
            line for line in (await http.get("/metrics")).text.splitlines() if line.startswith("warmserve_workers")
        )
        assert (await http.post("/admin/models", json=SECOND)).status_code == 201  # the name is free again


async def test_unloading_lets_a_running_stream_finish_and_turns_new_requests_away():
    settings = fake_settings(token_delay_s=0.02, n_ctx=2048)
    async with serve_with_workers(settings) as http:
        pids = [w["pid"] for w in (await model(http, "fake"))["workers"]]
        body = chat("fake", max_tokens=60, temperature=0, stream=True)
        streaming = asyncio.create_task(http.post("/v1/chat/completions", json=body))

        async def running() -> bool:
            return (await model(http, "fake"))["running"] == 1

        await eventually(running)
        unloading = await http.delete("/admin/models/fake", params={"wait": "false", "drain_timeout_s": 60})
        assert unloading.status_code == 202
        assert unloading.json()["state"] == "draining"
        refused = await http.post("/v1/chat/completions", json=chat("fake"))
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "model_unloading"
        assert refused.headers["retry-after"]

        response = await streaming  # ASGITransport hands over the body once the stream has ended
        lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        assert '"finish_reason":"length"' in lines[-2]
        assert '"error"' not in response.text

        async def removed() -> bool:
            return (await http.get("/admin/models/fake")).status_code == 404

        await eventually(removed)
        await pids_gone(pids)
        assert (await http.post("/v1/chat/completions", json=chat("fake"))).status_code == 404


async def test_an_unloaded_model_stays_listed_refuses_requests_and_loads_again():
    async with serve_with_workers(fake_settings()) as http:
        pids = [w["pid"] for w in (await model(http, "fake"))["workers"]]
        unloaded = await http.post("/admin/models/fake/unload")
        assert unloaded.status_code == 200
        assert (unloaded.json()["state"], unloaded.json()["workers"]) == ("unloaded", [])
        await pids_gone(pids)
        assert (await http.get("/ready")).status_code == 200  # unloaded on purpose is not "not ready"
        refused = await http.post("/v1/chat/completions", json=chat("fake"))
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "model_not_loaded"
        assert "/admin/models/fake/load" in refused.json()["error"]["message"]
        assert 'warmserve_model_loaded{model="fake"} 0.0' in (await http.get("/metrics")).text

        loaded = await http.post("/admin/models/fake/load")
        assert loaded.status_code == 200
        assert loaded.json()["state"] == "ready"
        assert (await http.post("/v1/chat/completions", json=chat("fake"))).status_code == 200


async def test_a_lazy_model_starts_no_worker_until_its_first_request():
    settings = fake_settings(model={"lazy": True}, load_delay_s=0.2)
    async with serve_with_workers(settings) as http:  # waits for /ready: a lazy model must not hold it back
        card = await model(http, "fake")
        assert (card["state"], card["workers"]) == ("unloaded", [])
        assert (await http.get("/v1/models/fake")).json()["state"] == "unloaded"
        ready = (await http.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["models"]["fake"]["state"] == "unloaded"

        answer = await http.post("/v1/chat/completions", json=chat("fake"))
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"]
        card = await model(http, "fake")
        assert card["state"] == "ready"
        assert [w["state"] for w in card["workers"]] == ["ready"]


async def test_an_idle_model_is_unloaded_and_the_next_request_loads_it_again():
    settings = fake_settings(model={"idle_unload_s": 0.3})
    async with serve_with_workers(settings) as http:
        assert (await http.post("/v1/chat/completions", json=chat("fake"))).status_code == 200
        pids = [w["pid"] for w in (await model(http, "fake"))["workers"]]

        async def unloaded() -> bool:
            return (await model(http, "fake"))["state"] == "unloaded"

        await eventually(unloaded)
        await pids_gone(pids)
        answer = await http.post("/v1/chat/completions", json=chat("fake"))
        assert answer.status_code == 200
        assert [w["pid"] for w in (await model(http, "fake"))["workers"]] != pids


async def test_the_sigterm_drain_is_not_held_up_by_an_unloaded_lazy_model():
    app = create_app(fake_settings(model={"lazy": True}))
    async with running_app(app) as http:
        await asyncio.wait_for(drain(app, timeout_s=30), 5)
        assert (await http.get("/ready")).json()["status"] == "draining"
        refused = await http.post("/admin/models/fake/load")
        assert refused.json()["error"]["code"] == "shutting_down"


@pytest.fixture
async def locked():
    async with serve_with_workers(
        fake_settings(server={"api_keys": ["user-key"], "admin_api_keys": ["admin-key"]})
    ) as h:
        yield h


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/models"),
        ("GET", "/admin/models/fake"),
        ("POST", "/admin/models"),
        ("POST", "/admin/models/fake/load"),
        ("POST", "/admin/models/fake/unload"),
        ("DELETE", "/admin/models/fake"),
    ],
)
async def test_admin_routes_need_the_admin_key(locked, method, path):
    for headers in ({}, {"Authorization": "Bearer user-key"}, {"Authorization": "Bearer wrong"}):
        response = await locked.request(method, path, json=SECOND, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"


async def test_the_admin_key_opens_admin_and_the_user_key_the_api(locked):
    admin = {"Authorization": "Bearer admin-key"}
    assert (await locked.get("/admin/models", headers=admin)).status_code == 200
    user = {"Authorization": "Bearer user-key"}
    assert (await locked.post("/v1/chat/completions", json=chat("fake"), headers=user)).status_code == 200


async def test_without_admin_keys_the_api_keys_guard_admin():
    async with serve_with_workers(fake_settings(server={"api_keys": ["user-key"]})) as http:
        assert (await http.get("/admin/models")).status_code == 401
        assert (await http.get("/admin/models", headers={"Authorization": "Bearer user-key"})).status_code == 200


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({**SECOND, "workers": -1}, "workers"),
        ({**SECOND, "backend": "onnx"}, "backend"),
        ({**SECOND, "fake": {"token_delay_s": -1}}, "fake.token_delay_s"),
        ({**SECOND, "idle_unload_s": 0}, "idle_unload_s"),
        ({**SECOND, "sampling": {"min_p": 2}}, "sampling.min_p"),
        ({**SECOND, "colour": "blue"}, "colour"),
        ({"name": "gguf", "path": "/nowhere/model.gguf"}, "path"),
    ],
)
async def test_an_invalid_spec_is_a_400_naming_the_field(client, spec, param):
    response = await client.post("/admin/models", json=spec)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert (await client.get("/admin/models")).json()["data"][0]["id"] == "fake"


async def test_a_taken_name_is_409_and_an_unknown_one_404(client):
    taken = await client.post("/admin/models", json={**SECOND, "name": "fake"})
    assert taken.status_code == 409
    assert (taken.json()["error"]["code"], taken.json()["error"]["param"]) == ("model_exists", "name")
    for method, path in (
        ("GET", "/admin/models/nope"),
        ("POST", "/admin/models/nope/load"),
        ("POST", "/admin/models/nope/unload"),
        ("DELETE", "/admin/models/nope"),
    ):
        response = await client.request(method, path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"


async def test_a_model_that_cannot_load_is_undone_with_a_503_saying_why(client):
    response = await client.post("/admin/models", json={**SECOND, "fake": {"crash_on_load": True}})
    assert response.status_code == 503
    assert "could not be loaded" in response.json()["error"]["message"]
    assert (await client.get("/admin/models/second")).status_code == 404


async def test_with_a_fixed_model_set_as_with_ray_changes_are_501():
    def make_pool(spec: ModelSpec, metrics: Metrics, publish: Publish) -> Pool:
        return ModelPool(spec, "warning", metrics, publish)

    async with running_app(create_app(fake_settings(), make_pool, manageable=False)) as http:
        assert (await http.get("/admin/models")).status_code == 200
        for method, path in (
            ("POST", "/admin/models"),
            ("POST", "/admin/models/fake/load"),
            ("POST", "/admin/models/fake/unload"),
            ("DELETE", "/admin/models/fake"),
        ):
            response = await http.request(method, path, json=SECOND)
            assert response.status_code == 501
            assert response.json()["error"]["code"] == "not_supported"
            assert "--ray" in response.json()["error"]["message"]
