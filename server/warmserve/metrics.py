"""Prometheus metrics, one registry per app so two apps in one process never mix.

Counters are bumped where the event happens (the pool for cancellations, tokens,
rejections and restarts; the API for answered requests); gauges of running and
waiting requests are read from the pools at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
        self.request_seconds = Histogram(
            "warmserve_request_duration_seconds",
            "Time from a worker taking a generation to its last event.",
            ["model"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )

    def watch_pools(self, read: GaugeReader) -> None:
        self.registry.register(_PoolGauges(read))
