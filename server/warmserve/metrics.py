"""Prometheus metrics, one registry per app so two apps in one process never mix.

Counters are bumped where the event happens (the pool for cancellations, tokens,
rejections and restarts; the API for answered requests); gauges of running and
waiting requests are read from the pools at scrape time. The same call sites feed each
model's `RecentWindow` (warmserve.recent), the last minute the web dashboard shows: it
outlives the model's pool (unload, load) as the counters do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from warmserve.recent import RecentWindow

GaugeReader = Callable[[], Iterable[tuple[str, dict[str, str], float]]]


class _PoolGauges(Collector):
    def __init__(self, read: GaugeReader) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for name, labels, value in self._read():
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, _GAUGE_HELP[name], labels=sorted(labels))
            family.add_metric([labels[k] for k in sorted(labels)], value)
        return families.values()


_GAUGE_HELP = {
    "warmserve_requests_running": "Requests admitted to a worker and not yet finished.",
    "warmserve_requests_waiting": "Requests queued for a free slot.",
    "warmserve_workers_ready": "Worker processes holding their model.",
    "warmserve_model_healthy": "1 unless every worker of the model keeps failing to load.",
    "warmserve_model_loaded": "1 while the model has workers; 0 while unloaded (lazy, idle or by an admin).",
}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("warmserve_requests", "HTTP requests answered.", ["endpoint", "status"], registry=r)
        self.cancelled = Counter(
            "warmserve_requests_cancelled",
            "Requests cancelled because the client went away.",
            ["model"],
            registry=r,
        )
        self.rejected = Counter(
            "warmserve_requests_rejected",
            "Requests turned away by admission control.",
            ["model", "reason"],
            registry=r,
        )
        self.timed_out = Counter(
            "warmserve_requests_timed_out", "Requests cancelled at their time limit.", ["model"], registry=r
        )
        self.prompt_tokens = Counter("warmserve_prompt_tokens", "Prompt tokens processed.", ["model"], registry=r)
        self.cached_tokens = Counter(
            "warmserve_prompt_tokens_cached",
            "Prompt tokens whose KV cache was reused (prefix reuse), not recomputed.",
            ["model"],
            registry=r,
        )
        self.completion_tokens = Counter("warmserve_completion_tokens", "Tokens generated.", ["model"], registry=r)
        self.drafted_tokens = Counter(
            "warmserve_speculative_draft_tokens",
            "Tokens proposed by prompt-lookup speculative decoding and verified by the model.",
            ["model"],
            registry=r,
        )
        self.accepted_tokens = Counter(
            "warmserve_speculative_accepted_tokens",
            "Drafted tokens the model drew as well (each one a decode step saved).",
            ["model"],
            registry=r,
        )
        self.resumed = Counter(
            "warmserve_requests_resumed",
            "Requests continued on another worker after the one running them died.",
            ["model"],
            registry=r,
        )
        self.poison_requests = Counter(
            "warmserve_poison_requests",
            "Requests failed, not resumed again, after each of two workers running them died.",
            ["model"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "warmserve_worker_restarts", "Worker processes restarted after exiting.", ["model"], registry=r
        )
        self.prompt_cache_hits = Counter(
            "warmserve_prompt_cache_hits",
            "Requests that got a prompt prefix's KV cells back from a worker's host-memory prompt cache.",
            ["model"],
            registry=r,
        )
        self.prompt_cache_misses = Counter(
            "warmserve_prompt_cache_misses",
            "Requests that reused no prefix, from their slot or the prompt cache (with the cache on).",
            ["model"],
            registry=r,
        )
        self.prompt_cache_evictions = Counter(
            "warmserve_prompt_cache_evictions",
            "Saved prompt states dropped from a prompt cache to stay within its budget.",
            ["model"],
            registry=r,
        )
        self.prompt_cache_restored_tokens = Counter(
            "warmserve_prompt_cache_restored_tokens",
            "Prompt tokens restored from a prompt cache instead of computed (also in prompt_tokens_cached).",
            ["model"],
            registry=r,
        )
        self.prompt_cache_bytes = Gauge(
            "warmserve_prompt_cache_bytes", "Bytes a worker's prompt cache holds.", ["model", "worker"], registry=r
        )
        self.prompt_cache_entries = Gauge(
            "warmserve_prompt_cache_entries",
            "Saved prompt states a worker's prompt cache holds.",
            ["model", "worker"],
            registry=r,
        )
        self.prompt_cache_budget_bytes = Gauge(
            "warmserve_prompt_cache_budget_bytes",
            "The most bytes a worker's prompt cache may hold.",
            ["model", "worker"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "warmserve_request_duration_seconds",
            "Time from a worker taking a generation to its last event.",
            ["model"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.time_to_first_token = Histogram(
            "warmserve_time_to_first_token_seconds",
            "Time from a generation's admission to its first token (queueing and prefill).",
            ["model"],
            registry=r,
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self._recent: dict[str, RecentWindow] = {}

    def recent(self, model: str) -> RecentWindow:
        """The model's last minute (made on first use)."""
        window = self._recent.get(model)
        if window is None:
            window = self._recent[model] = RecentWindow()
        return window

    def watch_pools(self, read: GaugeReader) -> None:
        self.registry.register(_PoolGauges(read))
