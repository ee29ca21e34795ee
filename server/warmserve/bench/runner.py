"""`warmserve bench`: warm up, run every concurrency level, then report."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import datetime, timezone

import httpx

from warmserve.bench.loadgen import BenchError, LevelRun, RequestRecord, measure, run_level
from warmserve.bench.report import format_table, require_matplotlib, to_json, write_json, write_plot
from warmserve.bench.settings import BenchSettings
from warmserve.bench.stats import LevelSummary, Sweep, summarise

log = logging.getLogger(__name__)


async def first_model(client: httpx.AsyncClient) -> str:
    try:
        response = await client.get("/models")
        response.raise_for_status()
        return str(response.json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, LookupError, TypeError) as exc:
        raise BenchError(f"could not pick a model from {client.base_url}models ({exc}); pass --model") from exc


async def run_sweep(settings: BenchSettings, transport: httpx.AsyncBaseTransport | None = None) -> Sweep:
    """Every level in turn over one pooled client; `transport` lets tests stand in for a server."""
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
    pool = max(settings.concurrency)
    async with httpx.AsyncClient(
        base_url=settings.base_url,
        headers=headers,
        timeout=httpx.Timeout(settings.timeout),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        transport=transport,
    ) as client:
        model = settings.model or await first_model(client)
        started_at = datetime.now(timezone.utc)
        load_before = _load_average()
        warmup: list[RequestRecord] = []
        for number in range(settings.warmup):
            await measure(client, settings, model, number, 0.0, warmup)
        levels: list[LevelRun] = []
        summaries: list[LevelSummary] = []
        next_number = settings.warmup
        for concurrency in settings.concurrency:
            level = await run_level(client, settings, model, concurrency, next_number)
            next_number += settings.requests
            summary = summarise(level)
            log.info(
                "concurrency %d: %d/%d done, %d errors, %.1f tokens/s",
                concurrency,
                summary.completed,
                summary.planned,
                summary.errors,
                summary.tokens_per_s,
            )
            levels.append(level)
            summaries.append(summary)
    return Sweep(
        model=model,
        started_at=started_at,
        levels=levels,
        summaries=summaries,
        load_average=(load_before, _load_average()),
    )


def _load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load of this machine: others' work on it shows as noise."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def run_bench(settings: BenchSettings) -> int:
    """Run, print the table, write the files. 0 when no request failed, else 1."""
    try:
        if settings.plot:
            require_matplotlib()
        sweep = asyncio.run(run_sweep(settings))
    except BenchError as exc:
        print(f"warmserve bench: {exc}", file=sys.stderr)
        return 1
    summaries = sweep.summaries
    print(f"{sweep.model} at {settings.base_url} ({settings.endpoint}, stream={settings.stream})")
    print(format_table(summaries))
    if settings.out:
        write_json(settings.out, to_json(settings, sweep))
    if settings.plot:
        title = f"{sweep.model}: {settings.endpoint}, max_tokens {settings.max_tokens}, {settings.base_url}"
        write_plot(settings.plot, summaries, title)
    return 1 if any(s.errors for s in summaries) else 0
