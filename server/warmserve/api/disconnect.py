"""A plain (non-streaming) answer is abandoned when its client goes away.

Starlette cancels an SSE response when its client leaves, but nothing watches the
connection while a route awaits a whole answer: `until_disconnected` does, so the
worker stops spending compute on an answer nobody will read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from warmserve.api.errors import ClientDisconnected

T = TypeVar("T")


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, but give up (and raise ClientDisconnected) if the client leaves."""
    work_task = asyncio.ensure_future(work)
    watcher = asyncio.create_task(_wait_for_disconnect(request))
    try:
        await asyncio.wait({work_task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work_task.done():
            return work_task.result()
        raise ClientDisconnected
    finally:
        watcher.cancel()
        work_task.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
