"""Per-level statistics from the request records: throughput and latency percentiles.

Throughput counts completed requests only, over the level's wall time. Inter-token
latency pools the gaps between content chunks of every request in the level, as
vLLM's serving benchmark does; a server that packs several tokens into one chunk
shows fewer, longer gaps. Decode speed is per stream: the chunks after the first over
the time from the first to the last, so it leaves out queueing and prompt processing
(the time to first token) and shows how fast one client sees its text arrive.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from warmserve.bench.loadgen import LevelRun


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolating linearly between ranks; None for no data."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    p50: float | None
    p95: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(p50=percentile(values, 50), p95=percentile(values, 95))


@dataclass(frozen=True)
class LevelSummary:
    concurrency: int
    planned: int
    completed: int
    errors: int
    cancelled: int
    not_started: int
    elapsed_s: float
    requests_per_s: float
    generated_tokens: int
    tokens_per_s: float
    tokens_unknown: int
    prompt_tokens_mean: float | None
    ttft_s: Spread
    itl_s: Spread
    decode_tokens_per_s: float | None  # median over streams
    e2e_s: Spread
    finish_reasons: dict[str, int]
    error_messages: dict[str, int]


def summarise(level: LevelRun) -> LevelSummary:
    ok = [r for r in level.records if r.outcome == "ok"]
    failed = [r for r in level.records if r.outcome == "error"]
    tokens = sum(r.tokens or 0 for r in ok)
    prompt_tokens = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    return LevelSummary(
        concurrency=level.concurrency,
        planned=level.planned,
        completed=len(ok),
        errors=len(failed),
        cancelled=sum(r.outcome == "cancelled" for r in level.records),
        not_started=level.planned - len(level.records),
        elapsed_s=level.elapsed_s,
        requests_per_s=len(ok) / level.elapsed_s,
        generated_tokens=tokens,
        tokens_per_s=tokens / level.elapsed_s,
        tokens_unknown=sum(r.tokens is None for r in ok),
        prompt_tokens_mean=sum(prompt_tokens) / len(prompt_tokens) if prompt_tokens else None,
        ttft_s=Spread.of([r.ttft_s for r in ok if r.ttft_s is not None]),
        itl_s=Spread.of([gap for r in ok for gap in r.itl_s]),
        decode_tokens_per_s=percentile([len(r.itl_s) / sum(r.itl_s) for r in ok if sum(r.itl_s) > 0], 50),
        e2e_s=Spread.of([r.e2e_s for r in ok]),
        finish_reasons=dict(Counter(r.finish_reason or "none" for r in ok)),
        error_messages=dict(Counter(r.error or "" for r in failed)),
    )


@dataclass(frozen=True)
class Sweep:
    """One `warmserve bench` run: every level's records and summary, in order."""

    model: str
    started_at: datetime
    levels: list[LevelRun]
    summaries: list[LevelSummary]
    load_average: tuple[tuple[float, float, float] | None, tuple[float, float, float] | None]
