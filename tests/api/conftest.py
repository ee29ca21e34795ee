"""In-process API tests: the app over httpx.ASGITransport, the fake backend in real workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from tests.conftest import fake_settings
from warmserve.api import create_app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(fake_settings(fail_on="BOOM"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warmserve") as http:

            async def ready() -> None:
                while (await http.get("/ready")).status_code != 200:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(ready(), 60)
            yield http


@pytest.fixture
def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://warmserve/v1", api_key="unused", http_client=client, max_retries=0)
