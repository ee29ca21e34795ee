"""A real warmserve server for the session (SmolLM2, under two names), and stub servers.

The server runs as `python -m warmserve serve` from this environment (README's `make test`
installs it beside the client); the client itself never imports it. Its URL is put in
`WARMSERVE_BASE_URL`, which is where ChatWarmServe and WarmServeLLM look by default, so the
standard tests and the examples find it without being told.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.standard_properties import MODEL, SECOND_MODEL
from tests.stub_server import StubServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """`warmserve serve --config FILE` on a free port; stopped by its own pid."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self._log = log_path.open("wb")
        # The server reads WARMSERVE_* settings; the developer's client settings must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARMSERVE_")}
        command = [sys.executable, "-m", "warmserve", "serve", "--config", str(config)]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"warmserve exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"warmserve not ready after {timeout} s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


@pytest.fixture(scope="session", autouse=True)
def warmserve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if importlib.util.find_spec("warmserve") is None:
        raise RuntimeError(
            "The integration tests start a real warmserve server: install it in this environment "
            "(`make install` at the repository root)."
        )
    tmp = tmp_path_factory.mktemp("warmserve")
    spec = {"workers": 1, "threads": 1, "n_ctx": 2048}
    config = tmp / "warmserve.yaml"  # YAML is a superset of JSON
    config.write_text(json.dumps({"models": [{"name": MODEL, **spec}, {"name": SECOND_MODEL, **spec}]}))
    server = ServerProcess(config, tmp / "server.log")
    try:
        server.wait_ready()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WARMSERVE_BASE_URL", server.base_url)
            patch.delenv("WARMSERVE_API_KEY", raising=False)
            yield server.base_url
    finally:
        server.stop()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.stop()
