"""create_app(settings): the whole HTTP app, with its pools, built without globals.

Two apps can live in one process (tests do this), and a test can hand in its own
settings, e.g. the fake backend. The pools start with the app's lifespan and are
stopped, workers and all, when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from warmserve import __version__
from warmserve.api import chat, completions, health, models, tokenize
from warmserve.api.errors import install_error_handlers
from warmserve.config import ServerSettings
from warmserve.pool import PoolManager


def create_app(settings: ServerSettings) -> FastAPI:
    pools = PoolManager(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pools.start()
        try:
            yield
        finally:
            await pools.stop()

    app = FastAPI(title="warmserve", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.pools = pools
    install_error_handlers(app)
    for module in (chat, completions, models, tokenize, health):
        app.include_router(module.router)
    return app
