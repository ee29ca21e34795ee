"""In-process API tests: the app over httpx.ASGITransport with the fake engine.

The engine runs in the test's own process (`InProcessPool`, the fake at the Pool interface),
except where a test is about worker processes (admin, admission): `serve_with_workers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import openai
import pytest

from tests.conftest import fake_settings
from warmserve.api import create_app
from warmserve.config import ServerSettings
from warmserve.pool import PoolFactory
from warmserve.pool.in_process import InProcessPool


@asynccontextmanager
async def serve_in_process(
    settings: ServerSettings, wait_ready: bool = True, make_pool: PoolFactory | None = InProcessPool
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client talking to it without a socket."""
    app = create_app(settings, make_pool)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warmserve") as http:

            async def ready() -> None:
                while (await http.get("/ready")).status_code != 200:
                    await asyncio.sleep(0.05)

            if wait_ready:
                await asyncio.wait_for(ready(), 60)
            yield http


def serve_with_workers(
    settings: ServerSettings, wait_ready: bool = True
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The same, with the fake engine in real worker processes."""
    return serve_in_process(settings, wait_ready, make_pool=None)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(fake_settings(fail_on="BOOM")) as http:
        yield http


@pytest.fixture
def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://warmserve/v1", api_key="unused", http_client=client, max_retries=0)
