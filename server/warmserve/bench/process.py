"""Any HTTP server as a benchmark's child process: warmserve or another (llama-server), started and stopped alike.

The benchmarks in benchmarks/ compare servers side by side, so each is started in a process group of
its own (a server's children, such as warmserve's workers, go with it), waited for until a readiness
path answers 200, and stopped by that group: SIGTERM, then SIGKILL after a timeout. Tests use
warmserve.testing.ServerProcess instead, which knows warmserve's own readiness and environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

READY_TIMEOUT_S = 300.0  # a model loading on a busy 2-core machine


def start_process(
    argv: Sequence[str],
    log: Path,
    port: int,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> subprocess.Popen[bytes]:
    """Start `argv` (output appended to `log`) and return once http://127.0.0.1:`port``ready_path` answers 200."""
    environment = None if env is None else dict(env)
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=environment
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_process(process)
    raise TimeoutError(f"{argv[0]} was not ready within {timeout_s} s; see {log}")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Stop the process and its group: SIGTERM (a server drains), SIGKILL after `timeout_s`."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
