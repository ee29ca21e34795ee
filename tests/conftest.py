"""Shared fixtures: fake-backend settings, and real server processes on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from warmserve.config import FakeOptions, ModelSpec, ServerSettings


def fake_settings(
    workers: int = 1,
    n_ctx: int = 256,
    model: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    **fake: Any,
) -> ServerSettings:
    """Settings serving one fake model; `model` and `server` override ModelSpec / ServerSettings fields."""
    spec = ModelSpec(
        name="fake", backend="fake", workers=workers, n_ctx=n_ctx, fake=FakeOptions(**fake), **(model or {})
    )
    return ServerSettings(models=[spec], **(server or {}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A `warmserve serve` subprocess on 127.0.0.1; stopped by its own pid."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "warmserve",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.process = subprocess.Popen(command + args, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=2).json()["status"] == "ready":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.log_path.read_text()}")

    def openai_client(self, api_key: str = "none", timeout: float = 120) -> openai.OpenAI:
        """The official client on this server, without retries, so a failure shows at once."""
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=api_key, max_retries=0, timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def start_server(args: list[str], tmp: Path) -> ServerProcess:
    server = ServerProcess(args, tmp / "server.log")
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def start_fake_server(
    tmp: Path, fake: dict[str, Any], workers: int = 1, n_ctx: int = 1024, **server: Any
) -> ServerProcess:
    """A real `warmserve serve` process serving one fake model named "fake", from a config file."""
    model = {"name": "fake", "backend": "fake", "workers": workers, "n_ctx": n_ctx, "fake": fake}
    config = write_config(tmp / "warmserve.yaml", {**server, "models": [model]})
    return start_server(["--config", str(config)], tmp)


@pytest.fixture(scope="session")
def hf_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion of the embedded GGUF to safetensors, shared by the transformers tests."""
    return tmp_path_factory.mktemp("hf-cache")


@pytest.fixture(scope="session")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real HTTP server process with two slow fake workers, for disconnect and crash tests."""
    fake = {"token_delay_s": 0.02, "capacity": 2, "crash_on": "CRASH"}
    server = start_fake_server(tmp_path_factory.mktemp("fake-server"), fake, workers=2, n_ctx=100_000)
    yield server
    server.stop()
