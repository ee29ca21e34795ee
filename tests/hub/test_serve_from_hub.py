"""End to end: servers that take their models from the fake hub, downloaded once and then served warm."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import write_config
from tests.hub.conftest import SMOL, SPLIT
from tests.hub.fake_hub import FakeHub
from warmserve.config import embedded_model_path
from warmserve.testing import ServerProcess, server_environment

pytestmark = pytest.mark.e2e
SMALL = {"workers": 1, "threads": 1, "n_ctx": 512, "slots": 2}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def answer(server: ServerProcess, model: str) -> str:
    reply = server.openai_client().chat.completions.create(model=model, messages=QUESTION, max_tokens=12, temperature=0)
    content = reply.choices[0].message.content
    assert content
    return content


def test_a_server_downloads_its_hub_model_then_restarts_from_the_cache_with_the_hub_gone(
    fake_hub: FakeHub, hub_env: dict[str, str], tmp_path: Path
):
    args = ["--model", f"{SMOL}:Q4_1", "--workers", "1", "--threads", "1", "--n-ctx", "512"]
    with ServerProcess(args, env=hub_env, log_path=tmp_path / "first.log") as server:
        assert [m.id for m in server.openai_client().models.list()] == ["smol-GGUF:Q4_1"]
        first = answer(server, "smol-GGUF:Q4_1")
    assert len(fake_hub.seen("GET", "/resolve/")) == 1

    fake_hub.stop()
    with ServerProcess(args, env=hub_env, log_path=tmp_path / "second.log") as server:
        assert answer(server, "smol-GGUF:Q4_1") == first
        assert "cannot be reached" in server.log_tail()


def test_offline_with_nothing_cached_a_server_exits_at_once_with_one_line(hub_env: dict[str, str]):
    command = [sys.executable, "-m", "warmserve", "serve", "--model", f"{SMOL}:Q4_1", "--port", "0"]
    env = server_environment({**hub_env, "HF_HUB_OFFLINE": "1"})
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"warmserve: model smol-GGUF:Q4_1: {SMOL}:Q4_1 is not in the local Hugging Face cache")
    assert line.endswith(f"While online, run `warmserve pull {SMOL}:Q4_1` (or serve it once) to put it in the cache.")


def test_hub_models_through_the_admin_api_show_their_download_then_serve(
    fake_hub: FakeHub, hub_env: dict[str, str], tmp_path: Path
):
    config = write_config(tmp_path / "warmserve.yaml", {"models": [{"name": "fake", "backend": "fake"}]})
    with (
        ServerProcess(["--config", str(config)], env=hub_env, log_path=tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=300) as admin,
    ):
        wrong = admin.post("/admin/models", json={"name": "smol", "path": f"{SMOL}:Q5_K_M", **SMALL})
        assert wrong.status_code == 400, wrong.text
        error = wrong.json()["error"]
        assert error["param"] == "path"
        assert f"{SMOL} has no GGUF model of quant Q5_K_M; its quants: Q4_1, Q8_0." in error["message"]
        assert "smol" not in [m["id"] for m in admin.get("/admin/models").json()["data"]]

        fake_hub.throttle_bytes_per_s = 20e6  # about 5 s for the 98 MB file
        started = admin.post(
            "/admin/models", params={"wait": "false"}, json={"name": "smol", "path": f"{SMOL}:Q4_1", **SMALL}
        )
        assert started.status_code == 202, started.text
        seen = []
        while (model := admin.get("/admin/models/smol").json())["state"] == "loading":
            if model["download"] is not None:
                seen.append(model["download"])
            time.sleep(0.2)
        assert model["state"] == "ready", model
        assert model["download"] is None
        total = embedded_model_path().stat().st_size
        assert {d["total_bytes"] for d in seen} <= {None, total}  # unknown only until the hub has listed the files
        assert all(d["done_bytes"] == 0 for d in seen if d["total_bytes"] is None)
        partway = [d["done_bytes"] for d in seen if 0 < d["done_bytes"] < total]
        assert partway, seen
        assert partway == sorted(partway)
        fake_hub.throttle_bytes_per_s = None

        split = admin.post("/admin/models", json={"name": "split", "path": f"{SPLIT}:Q4_1", **SMALL})
        assert split.status_code == 201, split.text
        assert split.json()["state"] == "ready"
        assert answer(server, "split") == answer(server, "smol")  # the same weights, split in three


def test_removing_a_model_while_it_downloads_stops_the_download(
    fake_hub: FakeHub, hub_env: dict[str, str], tmp_path: Path
):
    config = write_config(tmp_path / "warmserve.yaml", {"models": [{"name": "fake", "backend": "fake"}]})
    fake_hub.throttle_bytes_per_s = 2e6  # the whole file would take about 50 s
    with (
        ServerProcess(["--config", str(config)], env=hub_env, log_path=tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=60) as admin,
    ):
        spec = {"name": "slow", "path": f"{SMOL}:Q4_1", **SMALL}
        assert admin.post("/admin/models", params={"wait": "false"}, json=spec).status_code == 202
        while not ((admin.get("/admin/models/slow").json()["download"] or {}).get("done_bytes")):
            time.sleep(0.1)
        started = time.monotonic()
        assert admin.delete("/admin/models/slow").json()["deleted"] is True
        assert time.monotonic() - started < 10
        assert [m["id"] for m in admin.get("/admin/models").json()["data"]] == ["fake"]
        cache = Path(hub_env["HF_HUB_CACHE"])
        deadline = time.monotonic() + 10
        while [p for p in cache.rglob("*.incomplete")] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not list(cache.rglob("*.incomplete"))  # the partial file went with the cancelled download
        assert "Traceback" not in server.log_tail()
