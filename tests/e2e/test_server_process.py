"""warmserve.testing starts a real server: ready means every worker loaded, the caller's WARMSERVE_*
settings stay out, its data folder is its own, the server runs this code, it stops cleanly, and an
early exit shows the log."""

import os
from pathlib import Path

import httpx
import pytest

import warmserve
from tests.conftest import write_config
from warmserve.testing import ServerProcess, server_environment

pytestmark = pytest.mark.e2e

FAKE = {"name": "fake", "backend": "fake", "workers": 2, "n_ctx": 256}


def test_ready_means_every_worker_holds_its_model_and_stop_exits_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("WARMSERVE_API_KEYS", '["a-developers-key"]')  # would make every request a 401
    config = write_config(tmp_path / "warmserve.yaml", {"models": [FAKE]})
    with ServerProcess(["--config", str(config)], log_path=tmp_path / "server.log") as server:
        ready = httpx.get(f"{server.base_url}/ready").json()
        assert ready["status"] == "ready"
        assert ready["models"]["fake"]["ready_workers"] == 2
        assert [m.id for m in server.openai_client().models.list()] == ["fake"]
        assert server.openai_base_url == f"http://127.0.0.1:{server.port}/v1"
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        assert f"XDG_DATA_HOME={tmp_path / 'server-data'}".encode() in environ  # its data_dir, beside its log
    assert server.process.returncode == 0  # SIGTERM drains, then exits 0


def test_the_environment_drops_warmserve_settings_keeps_chosen_ones_and_puts_this_code_first(monkeypatch):
    monkeypatch.setenv("WARMSERVE_PORT", "1")
    monkeypatch.setenv("PYTHONPATH", "somewhere")
    env = server_environment({"WARMSERVE_DRAIN_TIMEOUT_S": "0"})
    assert [name for name in env if name.startswith("WARMSERVE_")] == ["WARMSERVE_DRAIN_TIMEOUT_S"]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(Path(warmserve.__file__).resolve().parents[1]), "somewhere"]


def test_a_server_that_exits_early_raises_with_its_log(tmp_path):
    with (
        pytest.raises(RuntimeError, match=r"exited early \(2\)[\s\S]*no-such-flag"),
        ServerProcess(["--no-such-flag"], log_path=tmp_path / "server.log"),
    ):
        pass


def test_a_server_whose_only_model_file_is_not_a_model_exits_1_at_once(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_text("not a model")
    server = ServerProcess(["--model", str(bogus), "--workers", "1"], log_path=tmp_path / "server.log")
    assert server.process.wait(60) == 1
    log = server.log_tail()
    assert log.count("is not a GGUF file") == 1, log
    assert f"model model: loading -> failed ({bogus} is not a GGUF file (it begins with b'not ')" in log
    assert "Traceback" not in log
