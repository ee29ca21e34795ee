"""Run the app under uvicorn, draining on SIGTERM before it stops.

uvicorn alone stops listening at once on SIGTERM and then re-raises the signal, so
the process dies by it. For a rolling deploy we want: readiness fails and new
requests get 503 while in-flight requests finish (up to the drain timeout), then
workers stop and the process exits 0. A second signal, or SIGINT, stops at once. A server whose
every model failed to load for good at start stops at once and exits 1: it has nothing to serve.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from warmserve.api.app import create_app, drain
from warmserve.config import ServerSettings
from warmserve.pool import STOP_BOUND_S

GRACEFUL_SHUTDOWN_S = 5  # after the drain, how long uvicorn waits for open connections to close


def exit_bound_s(settings: ServerSettings) -> float:
    """The longest a server takes to exit after SIGTERM: drain, close connections, stop the workers.

    A grace period around it (compose's stop_grace_period; Kubernetes' terminationGracePeriodSeconds,
    which also covers preStop) must be longer, or requests still draining are killed with the server.
    """
    return settings.drain_timeout_s + GRACEFUL_SHUTDOWN_S + STOP_BOUND_S


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        unservable = self._loop.create_task(self._exit_when_unservable())
        try:
            await super().serve(sockets)
        finally:
            unservable.cancel()

    async def _exit_when_unservable(self) -> None:
        await self._app.state.lifecycle.unservable.wait()
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain_task is None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await drain(self._app, self._drain_timeout_s)
        finally:
            self.should_exit = True


def run(settings: ServerSettings) -> int:
    """Serve until stopped; the exit status: 1 when no model could be loaded, else 0."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    DrainingServer(config, app, settings.drain_timeout_s).run()
    return 1 if app.state.lifecycle.unservable.is_set() else 0
