"""End to end: load the real SmolLM2 into a running server through /admin, use it, unload it."""

from __future__ import annotations

import json
import os
import threading

import httpx
import openai
import pytest

from tests.conftest import start_fake_server

pytestmark = pytest.mark.e2e
KEY = "admin-and-user"
SMOL = {"name": "smol", "workers": 1, "threads": 1, "n_ctx": 512, "slots": 2}  # backend llama_cpp, embedded GGUF


def test_a_model_loaded_through_the_admin_api_serves_the_openai_client_until_it_is_removed(tmp_path):
    server = start_fake_server(tmp_path, {}, api_keys=[KEY])
    try:
        auth = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=server.base_url, headers=auth, timeout=300) as http:
            assert http.post("/admin/models", json=SMOL, headers={"Authorization": "Bearer no"}).status_code == 401
            loaded = http.post("/admin/models", json=SMOL)
            assert loaded.status_code == 201, loaded.text
            assert loaded.json()["state"] == "ready"
            [pid] = [worker["pid"] for worker in loaded.json()["workers"]]

            client = server.openai_client(api_key=KEY)
            assert {m.id for m in client.models.list()} == {"fake", "smol"}
            question = [{"role": "user", "content": "What is the capital of France?"}]
            answer = client.chat.completions.create(model="smol", messages=question, max_tokens=12, temperature=0)
            assert answer.choices[0].message.content
            assert answer.usage is not None
            assert answer.usage.completion_tokens > 0
            stream = client.chat.completions.create(model="smol", messages=question, max_tokens=6, stream=True)
            assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

            deleted = http.delete("/admin/models/smol")
            assert deleted.json() == {"id": "smol", "object": "model", "deleted": True}
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # stopped and reaped before the DELETE answered
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="smol", messages=question, max_tokens=2)
            assert [m.id for m in client.models.list()] == ["fake"]
    finally:
        server.stop()


def test_the_event_feed_streams_a_snapshot_then_each_state_change_and_worker_event(tmp_path):
    server = start_fake_server(tmp_path, {}, api_keys=[KEY])
    auth = {"Authorization": f"Bearer {KEY}"}
    seen: list[tuple[str, dict]] = []
    subscribed = threading.Event()

    def follow() -> None:
        with (
            httpx.Client(base_url=server.base_url, headers=auth, timeout=60) as http,
            http.stream("GET", "/admin/events") as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    seen.append((kind, json.loads(line.removeprefix("data: "))))
                    subscribed.set()
                    if kind == "state" and seen[-1][1]["model"] == "second" and seen[-1][1]["state"] == "unloaded":
                        return

    follower = threading.Thread(target=follow, daemon=True)
    try:
        follower.start()
        assert subscribed.wait(30)
        with httpx.Client(base_url=server.base_url, headers=auth, timeout=120) as http:
            added = http.post("/admin/models", json={"name": "second", "backend": "fake", "workers": 1})
            assert added.status_code == 201, added.text
            [pid] = [worker["pid"] for worker in added.json()["workers"]]
            assert http.post("/admin/models/second/unload").status_code == 200
        follower.join(60)
        assert not follower.is_alive()
    finally:
        server.stop()
    kind, snapshot = seen[0]
    assert kind == "snapshot"
    assert [(m["model"], m["state"]) for m in snapshot["models"]] == [("fake", "ready")]
    second = [(kind, event) for kind, event in seen[1:] if event["model"] == "second"]
    assert [(e["previous"], e["state"]) for kind, e in second if kind == "state"] == [
        ("unloaded", "loading"),
        ("loading", "ready"),
        ("ready", "draining"),
        ("draining", "stopping"),
        ("stopping", "unloaded"),
    ]
    assert [(e["kind"], e["pid"]) for kind, e in second if kind == "worker"] == [
        ("started", pid),
        ("ready", pid),
        ("stopped", pid),
    ]
