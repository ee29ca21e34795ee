"""In-process API tests: the app over httpx.ASGITransport, the fake backend in real workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import openai
import pytest

from tests.conftest import fake_settings
from warmserve.api import create_app
from warmserve.config import ServerSettings


@asynccontextmanager
async def serve_in_process(settings: ServerSettings, wait_ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client talking to it without a socket."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warmserve") as http:

            async def ready() -> None:
                while (await http.get("/ready")).status_code != 200:
                    await asyncio.sleep(0.05)

            if wait_ready:
                await asyncio.wait_for(ready(), 60)
            yield http


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(fake_settings(fail_on="BOOM")) as http:
        yield http


@pytest.fixture
def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://warmserve/v1", api_key="unused", http_client=client, max_retries=0)
