"""create_app(settings): the whole HTTP app, with its pools, built without globals.

Two apps can live in one process (tests do this), and a test can hand in its own
settings, e.g. the fake backend. The pools start with the app's lifespan and are
stopped, workers and all, when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import Depends, FastAPI

from warmserve import __version__
from warmserve.api import (
    admin,
    admin_adapters,
    chat,
    completions,
    embeddings,
    health,
    messages,
    metrics,
    models,
    responses,
    tokenize,
    ui,
)
from warmserve.api.errors import install_error_handlers
from warmserve.api.limits import BodySizeLimit
from warmserve.api.response_store import ResponseStore
from warmserve.api.security import ApiKeys, install_cors, require_admin_key, require_api_key
from warmserve.config import ServerSettings
from warmserve.metrics import Metrics
from warmserve.pool import PoolFactory, PoolManager
from warmserve.ui import load_assets

log = logging.getLogger(__name__)


@dataclass
class Lifecycle:
    """`draining` is set when SIGTERM starts a drain: readiness fails and new work gets 503. `unservable` is
    set when every model failed to load for good at start: the server has nothing to serve, and exits."""

    draining: bool = False
    unservable: asyncio.Event = field(default_factory=asyncio.Event)


async def _watch_start(pools: PoolManager, lifecycle: Lifecycle) -> None:
    if await pools.all_failed():
        log.error("no model can be served: every model failed to load (above); exiting with status 1")
        lifecycle.unservable.set()


def create_app(settings: ServerSettings, make_pool: PoolFactory | None = None, manageable: bool = True) -> FastAPI:
    """The app; `make_pool` replaces local worker processes (Ray Serve hands in its replicas, and a
    fixed model set: `manageable=False` refuses run-time loads and unloads)."""
    registry = Metrics()
    pools = PoolManager(settings, registry, make_pool, manageable)
    store = ResponseStore.from_settings(settings) if settings.store else None  # None: stateless
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if store is not None:
            await store.open()
        try:
            await pools.start()
            watch = asyncio.get_running_loop().create_task(_watch_start(pools, lifecycle))
            try:
                yield
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
                await pools.stop()
        finally:
            if store is not None:
                await store.close()

    app = FastAPI(title="warmserve", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.pools = pools
    app.state.metrics = registry
    app.state.responses = store
    app.state.lifecycle = lifecycle
    app.state.api_keys = ApiKeys(settings.accepted_api_keys())
    app.state.admin_keys = ApiKeys(settings.accepted_admin_keys())
    install_error_handlers(app)
    for module in (chat, completions, embeddings, messages, models, responses, tokenize):
        app.include_router(module.router, dependencies=[Depends(require_api_key)])
    # The adapter routes first: the model routes' `{model:path}` would also match their paths.
    app.include_router(admin_adapters.router, dependencies=[Depends(require_admin_key)])
    app.include_router(admin.router, dependencies=[Depends(require_admin_key)])
    app.include_router(health.router)
    app.include_router(metrics.router)
    if settings.ui:
        app.state.ui_assets = load_assets()
        app.include_router(ui.router)
    install_cors(app, settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(metrics.CountRequests, metrics=registry)
    return app


async def drain(app: FastAPI, timeout_s: float) -> None:
    """Stop taking work, then wait (up to `timeout_s`) for the requests in flight to finish."""
    app.state.lifecycle.draining = True
    pools: PoolManager = app.state.pools
    log.info("draining: %d requests in flight, waiting up to %.0f s", pools.running, timeout_s)
    await pools.wait_idle(timeout_s)
    pools.events.close()  # followers of /admin/events saw the drain; their connections must not hold the exit
    log.info("drained with %d requests still in flight", pools.running)
