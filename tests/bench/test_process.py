"""The benchmarks' server processes: started until ready, stopped with their group, a dead start reported."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from warmserve.bench.process import start_process, stop_process
from warmserve.testing import free_port


def test_a_server_is_ready_when_its_path_answers_and_stops_with_its_group(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    process = start_process(argv, tmp_path / "server.log", port, "/")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    stop_process(process)
    assert process.returncode is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_a_server_that_exits_before_it_is_ready_is_an_error_naming_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with pytest.raises(RuntimeError, match="exited with 3") as raised:
        start_process([sys.executable, "-c", "import sys; print('no model'); sys.exit(3)"], log, free_port(), "/")
    assert str(log) in str(raised.value)
    assert "no model" in log.read_text()
