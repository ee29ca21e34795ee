"""End to end: load the real SmolLM2 into a running server through /admin, use it, unload it."""

from __future__ import annotations

import os

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
