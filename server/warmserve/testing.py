"""Start a real warmserve server process on 127.0.0.1 for tests: ours, and your own.

    from warmserve.testing import ServerProcess

    with ServerProcess(["--workers", "2", "--n-ctx", "1024"]) as server:
        client = server.openai_client()  # needs the `openai` package
        client.chat.completions.create(model=..., messages=[...])

The server runs as `python -m warmserve serve` under this interpreter, in this environment
(an inherited PYTHONPATH included), so it runs the same warmserve code as the test. Every
`WARMSERVE_*` variable is removed first: the server reads its settings from them, and a
developer's own (a port, API keys, a client's WARMSERVE_BASE_URL) must not change what a test
starts; pass `env` to set some on purpose. Nor may a test server write to the developer's data folder:
its XDG_DATA_HOME is a folder beside its log, so its default `--data-dir` (the stored responses) is
its own; `env` (XDG_DATA_HOME or WARMSERVE_DATA_DIR), `--data-dir` or a config file still choose.

Ready means `/ready` answers 200 with status "ready": every worker of every model holds its
model. A bare 200 is not enough, as it also covers "degraded" (some workers still loading), and
a test that needs two workers, or crashes one, would race the other's load.

The process is stopped by its own pid: SIGTERM (the server drains, as in a deployment), then
SIGKILL after a timeout. Its output goes to a log file whose tail is in every failure message.
Only the standard library and httpx are imported here: nothing heavy, and `openai` only when
`openai_client()` is called.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import openai

__all__ = ["HOST", "ServerProcess", "free_port", "server_environment", "start_server"]

HOST = "127.0.0.1"
READY_TIMEOUT_S = 300.0  # loading a real model on a busy 2-core machine can take minutes
STOP_TIMEOUT_S = 60.0  # longer than the default drain (30 s) plus stopping the workers
LOG_TAIL_CHARS = 20_000


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on now (another process may still take it before the server does)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def server_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without `WARMSERVE_*` settings, plus `extra`.

    When this warmserve is a source tree (not in site-packages), its directory goes first on
    PYTHONPATH, so the server runs this code even if PYTHONPATH was relative or never set.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("WARMSERVE_")}
    source = Path(__file__).resolve().parents[1]
    if source.name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return env | dict(extra or {})


class ServerProcess:
    """`warmserve serve ARGS --host 127.0.0.1 --port PORT` (a free one by default), started at once.

    As a context manager it waits until the server is ready and stops it on exit.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        port: int | None = None,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port() if port is None else port
        self.base_url = f"http://{HOST}:{self.port}"  # the root: /ready, /metrics, /admin
        self.openai_base_url = f"{self.base_url}/v1"  # an OpenAI client's base_url, or WARMSERVE_BASE_URL
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="warmserve-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = log_path
        self.data_home = log_path.with_name(f"{log_path.stem}-data")  # XDG_DATA_HOME unless `env` sets one
        env = {"XDG_DATA_HOME": str(self.data_home), **(env or {})}
        command = [sys.executable, "-m", "warmserve", "serve", *args, "--host", HOST, "--port", str(self.port)]
        with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_environment(env))

    def log_tail(self, max_chars: int = LOG_TAIL_CHARS) -> str:
        """The end of what the server has printed so far, for failure messages."""
        text = self.log_path.read_text(errors="replace")
        return text if len(text) <= max_chars else f"[... {len(text) - max_chars} chars]\n{text[-max_chars:]}"

    def is_ready(self) -> bool:
        try:
            response = httpx.get(f"{self.base_url}/ready", timeout=2)
            return response.status_code == 200 and response.json().get("status") == "ready"
        except (httpx.HTTPError, ValueError):
            return False

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Return once every model's workers are loaded; raise with the log if the server exits or is late."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"warmserve exited early ({self.process.returncode}):\n{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"warmserve not ready after {timeout_s} s:\n{self.log_tail()}")

    def openai_client(self, api_key: str = "none", timeout: float = 120) -> openai.OpenAI:
        """The official client on this server, without retries, so a failure shows at once."""
        import openai

        return openai.OpenAI(base_url=self.openai_base_url, api_key=api_key, max_retries=0, timeout=timeout)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout_s`; returns its exit status."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)

    def ready_or_stopped(self, timeout_s: float = READY_TIMEOUT_S) -> ServerProcess:
        """This server once ready; if it never gets ready, it is stopped before the error goes up."""
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> ServerProcess:
        return self.ready_or_stopped()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    args: Sequence[str] = (),
    *,
    port: int | None = None,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> ServerProcess:
    """A ready server that the caller stops (for fixtures that yield it); stopped here if it never gets ready."""
    return ServerProcess(args, port=port, log_path=log_path, env=env).ready_or_stopped(timeout_s)
