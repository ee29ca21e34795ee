"""SIGTERM drains: readiness fails, new work gets 503, in-flight work finishes, exit 0, no orphans."""

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_fake_server

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").exists() else ""
    return "zombie" not in status


def test_sigterm_drains_in_flight_requests_then_exits_zero_without_orphans(tmp_path):
    server = start_fake_server(tmp_path, {"token_delay_s": 0.02}, workers=2, n_ctx=10_000, drain_timeout_s=60)
    try:
        workers = children(server.process.pid)
        assert len(workers) >= 2
        body = {"model": "fake", "prompt": "tick tock", "max_tokens": 100, "temperature": 0, "stream": True}
        with (
            httpx.Client(base_url=server.base_url, timeout=60) as http,
            http.stream("POST", "/v1/completions", json=body) as stream,
        ):
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data: {"))
            os.kill(server.process.pid, signal.SIGTERM)
            for _ in range(100):
                if http.get("/ready").status_code == 503:
                    break
            ready = http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["status"] == "draining"
            refused = http.post("/v1/completions", json={"model": "fake", "prompt": "new", "max_tokens": 2})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            rest = [line for line in lines if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"
        assert json.loads(rest[-2].removeprefix("data: "))["choices"][0]["finish_reason"] == "length"
        assert server.process.wait(60) == 0
        # Children notice their parent's exit through their pipes; give them a moment to go.
        for _ in range(100):
            if not [pid for pid in workers if alive(pid)]:
                break
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        server.stop()
