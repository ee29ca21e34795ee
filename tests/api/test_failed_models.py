"""A model whose load fails for good (a file no retry can load) is `failed` with the reason, everywhere,
is not retried, and a server with nothing else to serve gives up."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from tests.api.test_admin import SECOND, eventually, running_app
from tests.conftest import fake_settings
from warmserve.api import create_app
from warmserve.config import ModelSpec, ServerSettings
from warmserve.model_options import FakeOptions

REASON = "/models/tiny.ggmlv2.bin is a GGJT v2 file whose Q4_0 blocks llama.cpp no longer reads. Get a GGUF."
BROKEN = {"fail_on_load": REASON}


def _failing_and_fine() -> ServerSettings:
    fine = ModelSpec(name="fine", backend="fake", workers=1, n_ctx=256)
    broken = ModelSpec(name="broken", backend="fake", workers=2, n_ctx=256, fake=FakeOptions(**BROKEN))
    return ServerSettings(models=[fine, broken])


async def test_a_model_that_failed_for_good_shows_its_reason_and_refuses_requests():
    app = create_app(_failing_and_fine())
    async with running_app(app) as http:

        async def settled() -> bool:
            """The model fails at its first worker's failure; the other worker reports its own when its load ends."""
            cards = {card["id"]: card for card in (await http.get("/v1/models")).json()["data"]}
            workers = (await http.get("/admin/models/broken")).json()["workers"]
            every_worker_done = all(worker["state"] == "failed" for worker in workers)
            return cards["broken"]["state"] == "failed" and cards["fine"]["state"] == "ready" and every_worker_done

        await eventually(settled)
        card = (await http.get("/v1/models/broken")).json()
        assert (card["state"], card["reason"], card["ready_workers"]) == ("failed", REASON, 0)
        assert (await http.get("/v1/models/fine")).json()["reason"] is None
        admin = (await http.get("/admin/models/broken")).json()
        assert (admin["state"], admin["reason"]) == ("failed", REASON)
        assert [(w["state"], w["load_error"]) for w in admin["workers"]] == [("failed", REASON)] * 2
        response = await http.post("/v1/completions", json={"model": "broken", "prompt": "x"})
        assert response.status_code == 503
        assert "retry-after" not in response.headers
        error = response.json()["error"]
        assert (error["code"], error["message"]) == ("model_failed", f"Model 'broken' could not be loaded: {REASON}")
        assert (await http.post("/v1/completions", json={"model": "fine", "prompt": "x"})).status_code == 200
        assert 'warmserve_model_healthy{model="broken"} 0.0' in (await http.get("/metrics")).text
        ready = await http.get("/ready")
        assert (ready.status_code, ready.json()["models"]["broken"]["state"]) == (503, "failed")
        await asyncio.sleep(1.0)  # past the first restart's backoff: nothing restarted
        assert [w["state"] for w in (await http.get("/admin/models/broken")).json()["workers"]] == ["failed"] * 2
        assert not app.state.lifecycle.unservable.is_set()  # "fine" serves


async def _unservable(app: FastAPI) -> bool:
    return app.state.lifecycle.unservable.is_set()


async def test_a_server_whose_only_model_failed_for_good_gives_up():
    app = create_app(fake_settings(workers=2, **BROKEN))
    async with running_app(app):
        await asyncio.wait_for(app.state.lifecycle.unservable.wait(), 30)


async def test_a_server_with_a_lazy_model_does_not_give_up():
    lazy = ModelSpec(name="lazy", backend="fake", workers=1, lazy=True)
    broken = ModelSpec(name="broken", backend="fake", workers=1, fake=FakeOptions(**BROKEN))
    app = create_app(ServerSettings(models=[lazy, broken]))
    async with running_app(app) as http:
        await eventually(lambda: _state(http, "broken", "failed"))
        await asyncio.sleep(0.2)
        assert not app.state.lifecycle.unservable.is_set()


async def _state(http, model: str, state: str) -> bool:
    return bool((await http.get(f"/v1/models/{model}")).json()["state"] == state)


async def test_adding_a_model_that_fails_for_good_is_a_400_with_the_reason_and_undone():
    async with running_app(create_app(fake_settings())) as http:
        response = await http.post("/admin/models", json={**SECOND, "fake": BROKEN})
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["param"], error["message"]) == ("path", f"Model 'second' could not be loaded: {REASON}")
        assert (await http.get("/admin/models/second")).status_code == 404


async def test_loading_a_failed_model_again_starts_it_over():
    app = create_app(fake_settings(**BROKEN))
    async with running_app(app) as http:
        await eventually(lambda: _state(http, "fake", "failed"))
        before = [w["pid"] for w in (await http.get("/admin/models/fake")).json()["workers"]]
        again = await http.post("/admin/models/fake/load")
        assert again.status_code == 400  # the same file fails the same way, after a fresh try
        assert REASON in again.json()["error"]["message"]
        after = (await http.get("/admin/models/fake")).json()
        assert after["state"] == "failed"
        assert [w["pid"] for w in after["workers"]] != before
