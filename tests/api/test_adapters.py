"""LoRA adapters over HTTP with the fake engine: each one a model id, selected by `model` in every route,
added and removed at run time (/admin/models/{model}/adapters), drained before it goes.

The fake puts an adapter's name before its words, so an answer says which adapter wrote it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import serve_in_process, serve_with_workers
from tests.api.test_admin import chat, eventually, model
from tests.conftest import fake_settings


@pytest.fixture
def adapter_file(tmp_path: Path) -> str:
    """Anything that exists is an adapter to the fake."""
    path = tmp_path / "warmy.lora"
    path.write_text("fake adapter")
    return str(path)


def with_adapters(adapter_file: str, **fake: Any) -> Any:
    return fake_settings(model={"adapters": [{"name": "warmy", "path": adapter_file}]}, **fake)


async def content(http: httpx.AsyncClient, model_id: str, **extra: Any) -> str:
    response = await http.post("/v1/chat/completions", json=chat(model_id, **{"temperature": 0, **extra}))
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model_id
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


async def test_an_adapter_is_a_model_id_whose_card_names_its_parent(adapter_file: str):
    async with serve_in_process(with_adapters(adapter_file)) as http:
        cards = {card["id"]: card for card in (await http.get("/v1/models")).json()["data"]}
        assert list(cards) == ["fake", "warmy"]
        assert cards["fake"]["parent"] is None
        adapter, base = cards["warmy"], cards["fake"]
        assert adapter["parent"] == "fake"
        assert (adapter["backend"], adapter["state"], adapter["context_length"]) == ("fake", "ready", 256)
        assert adapter["capabilities"] == {**base["capabilities"], "embeddings": False}
        assert (await http.get("/v1/models/warmy")).json() == adapter


async def test_every_route_selects_the_adapter_by_model_and_the_base_stays_itself(adapter_file: str):
    async with serve_in_process(with_adapters(adapter_file)) as http:
        assert await content(http, "warmy") == "warmy there"
        assert await content(http, "fake") == "there hello"
        completion = await http.post(
            "/v1/completions", json={"model": "warmy", "prompt": "a b", "max_tokens": 3, "temperature": 0}
        )
        assert completion.json()["choices"][0]["text"] == "warmy b a"
        response = await http.post(
            "/v1/responses", json={"model": "warmy", "input": "a b", "max_output_tokens": 2, "temperature": 0}
        )
        assert response.json()["output"][0]["content"][0]["text"] == "warmy b"
        assert response.json()["model"] == "warmy"
        message = await http.post(
            "/v1/messages",
            json={
                "model": "warmy",
                "max_tokens": 2,
                "temperature": 0,
                "messages": [{"role": "user", "content": "a b"}],
            },
        )
        assert message.json()["content"][0]["text"] == "warmy b"
        streamed = await http.post("/v1/chat/completions", json=chat("warmy", stream=True))
        assert '"content":"warmy"' in streamed.text
        tokens = await http.post("/v1/tokenize", json={"model": "warmy", "prompt": "a b"})
        assert tokens.json()["count"] == 2


async def test_embeddings_of_an_adapter_are_a_400_naming_model(adapter_file: str):
    async with serve_in_process(with_adapters(adapter_file)) as http:
        refused = await http.post("/v1/embeddings", json={"model": "warmy", "input": "a b"})
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "model"
        assert "warmy" in refused.json()["error"]["message"]
        assert (await http.post("/v1/embeddings", json={"model": "fake", "input": "a b"})).status_code == 200


async def test_base_and_adapter_requests_in_flight_at_once_each_get_their_own_answer(adapter_file: str):
    async with serve_in_process(with_adapters(adapter_file, token_delay_s=0.01)) as http:
        answers = await asyncio.gather(*(content(http, m, max_tokens=3) for m in ["fake", "warmy"] * 3))
        assert answers == ["there hello user:", "warmy there hello"] * 3


async def test_an_adapter_added_at_run_time_answers_survives_a_worker_restart_and_goes_on_delete(adapter_file: str):
    async with serve_with_workers(fake_settings()) as http:
        added = await http.post("/admin/models/fake/adapters", json={"name": "warmy", "path": adapter_file})
        assert added.status_code == 201, added.text
        assert added.json() | {"spec": None} == {
            "id": "warmy",
            "object": "admin.adapter",
            "model": "fake",
            "state": "ready",
            "running": 0,
            "spec": None,
        }
        assert await content(http, "warmy") == "warmy there"
        listed = (await http.get("/admin/models/fake/adapters")).json()["data"]
        assert [(a["id"], a["spec"]["path"], a["spec"]["scale"]) for a in listed] == [("warmy", adapter_file, 1.0)]
        assert [a["name"] for a in (await model(http, "fake"))["spec"]["adapters"]] == ["warmy"]

        [worker] = (await model(http, "fake"))["workers"]
        os.kill(worker["pid"], signal.SIGKILL)  # the replacement loads the adapter from the model's spec

        async def replaced() -> bool:
            [now] = (await model(http, "fake"))["workers"]
            return now["pid"] != worker["pid"] and now["state"] == "ready"

        await eventually(replaced)
        assert await content(http, "warmy") == "warmy there"

        deleted = await http.delete("/admin/models/fake/adapters/warmy")
        assert deleted.status_code == 200
        assert deleted.json() == {"id": "warmy", "object": "admin.adapter", "deleted": True}
        assert [card["id"] for card in (await http.get("/v1/models")).json()["data"]] == ["fake"]
        gone = await http.post("/v1/chat/completions", json=chat("warmy"))
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "model_not_found"
        assert (await http.delete("/admin/models/fake/adapters/warmy")).status_code == 404
        assert await content(http, "fake") == "there hello"


async def test_a_bad_adapter_is_a_400_naming_it_and_the_model_serves_on(tmp_path: Path):
    async with serve_with_workers(fake_settings()) as http:
        missing = str(tmp_path / "nowhere.lora")
        refused = await http.post("/admin/models/fake/adapters", json={"name": "ghost", "path": missing})
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert "'ghost'" in error["message"]
        assert missing in error["message"]
        assert error["param"] == "path"
        assert (await http.post("/v1/chat/completions", json=chat("ghost"))).status_code == 404
        assert (await http.get("/admin/models/fake/adapters")).json()["data"] == []
        assert await content(http, "fake") == "there hello"


async def test_adapter_names_are_unique_among_models_and_adapters(adapter_file: str):
    async with serve_with_workers(with_adapters(adapter_file)) as http:
        for name in ("warmy", "fake"):
            taken = await http.post("/admin/models/fake/adapters", json={"name": name, "path": adapter_file})
            assert taken.status_code == 409, name
            assert taken.json()["error"]["param"] == "name"
        second = {"name": "warmy", "backend": "fake", "workers": 1, "n_ctx": 256}
        assert (await http.post("/admin/models", json=second)).status_code == 409
        unknown = await http.post("/admin/models/nope/adapters", json={"name": "x", "path": adapter_file})
        assert unknown.status_code == 404


async def test_removing_an_adapter_lets_its_running_stream_finish_and_turns_new_requests_away(adapter_file: str):
    settings = with_adapters(adapter_file, token_delay_s=0.02, n_ctx=2048)
    async with serve_with_workers(settings) as http:
        body = chat("warmy", max_tokens=60, temperature=0, stream=True)
        streaming = asyncio.create_task(http.post("/v1/chat/completions", json=body))

        async def running() -> bool:
            listed = (await http.get("/admin/models/fake/adapters")).json()["data"]
            return listed[0]["running"] == 1

        await eventually(running)
        removing = asyncio.create_task(http.delete("/admin/models/fake/adapters/warmy"))

        async def draining() -> bool:
            listed = (await http.get("/admin/models/fake/adapters")).json()["data"]
            return listed[0]["state"] == "draining"

        await eventually(draining)
        refused = await http.post("/v1/chat/completions", json=chat("warmy"))
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "model_unloading"
        assert await content(http, "fake") == "there hello"  # the base model is not drained

        response = await streaming
        lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        assert '"finish_reason":"length"' in lines[-2]
        assert (await removing).status_code == 200
        assert (await http.post("/v1/chat/completions", json=chat("warmy"))).status_code == 404


async def test_an_adapter_of_an_unloaded_model_is_registered_and_loads_with_it(adapter_file: str):
    async with serve_with_workers(fake_settings(model={"lazy": True})) as http:
        added = await http.post("/admin/models/fake/adapters", json={"name": "warmy", "path": adapter_file})
        assert added.status_code == 202
        assert added.json()["state"] == "unloaded"
        assert await content(http, "warmy") == "warmy there"  # loads the model, with the adapter
        assert (await http.get("/admin/models/fake/adapters")).json()["data"][0]["state"] == "ready"
