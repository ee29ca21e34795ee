"""What the checks run inside the network namespace share: the Serve address and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

PORT = 8000  # Serve's HTTP proxy; the namespace has this port to itself
BASE_URL = f"http://127.0.0.1:{PORT}"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise TimeoutError(f"not {what} after {timeout} s")


def ready() -> bool:
    """Every replica of every model holds its model (a 200 saying `degraded` would mean only some do)."""
    try:
        return httpx.get(f"{BASE_URL}/ready", timeout=2).json()["status"] == "ready"
    except (httpx.HTTPError, ValueError):
        return False


@contextmanager
def serving(command: list[str], log_path: Path, stop: signal.Signals) -> Iterator[subprocess.Popen[bytes]]:
    """Run a command that deploys warmserve to the cluster until it is ready; stop it by its pid."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: process.poll() is not None or ready(), 240, "ready")
            assert process.poll() is None, log_path.read_text()
            yield process
        finally:
            if process.poll() is None:
                os.kill(process.pid, stop)  # it removes the application from the cluster, then exits
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
