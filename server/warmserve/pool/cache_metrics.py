"""A worker's prompt-cache report as Prometheus metrics: counters advance by what happened since its last
report, gauges show what it holds now."""

from __future__ import annotations

from warmserve.generation import PromptCacheStats
from warmserve.metrics import Metrics


def record_prompt_cache(
    metrics: Metrics, model: str, worker: int, before: PromptCacheStats | None, now: PromptCacheStats
) -> None:
    was = before or PromptCacheStats()
    metrics.prompt_cache_hits.labels(model).inc(max(0, now.hits - was.hits))
    metrics.prompt_cache_misses.labels(model).inc(max(0, now.misses - was.misses))
    metrics.prompt_cache_evictions.labels(model).inc(max(0, now.evictions - was.evictions))
    metrics.prompt_cache_restored_tokens.labels(model).inc(max(0, now.restored_tokens - was.restored_tokens))
    labels = (model, str(worker))
    metrics.prompt_cache_bytes.labels(*labels).set(now.bytes)
    metrics.prompt_cache_entries.labels(*labels).set(now.entries)
    metrics.prompt_cache_budget_bytes.labels(*labels).set(now.budget_bytes)
