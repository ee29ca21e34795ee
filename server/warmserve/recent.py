"""What a model did over the last minute, in per-second buckets: the dashboard's live numbers.

Prometheus counters only grow, and a rate needs a scraper; the dashboard wants "tokens/s and time
to first token over the last minute" from the API process itself, once a second, for nothing.
A `RecentWindow` keeps one small array per quantity, indexed by the second modulo the span, so
adding is O(1) and a sum is O(span) without any allocation. The counts feed both this and the
Prometheus counters from the same call sites (the request tracker), so the two never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Quantity = Literal["completion_tokens", "prompt_tokens", "cached_tokens", "requests", "ttft_s", "ttft_n", "rejected"]
_QUANTITIES: tuple[Quantity, ...] = (
    "completion_tokens",
    "prompt_tokens",
    "cached_tokens",
    "requests",
    "ttft_s",
    "ttft_n",
    "rejected",
)
SPAN_S = 60


@dataclass(frozen=True)
class RecentRates:
    """A model's last minute (or less, since the server started), as the dashboard shows it."""

    tokens_per_s: float  # generated tokens per second over the window
    tokens_per_s_now: float  # the same over the last few seconds: the live chart's point
    ttft_s: float | None  # mean time to first token of the requests that began streaming; None: none did
    requests: int  # requests finished
    rejected: int  # requests turned away by admission control
    cache_hit_rate: float | None  # prompt tokens whose KV was reused / prompt tokens; None: no prompts
    window_s: float


class RecentWindow:
    def __init__(self, span_s: int = SPAN_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._span = span_s
        self._clock = clock
        self._born = clock()
        self._stamps = [-1] * span_s  # which second each slot holds now
        self._values: dict[Quantity, list[float]] = {q: [0.0] * span_s for q in _QUANTITIES}

    def add(self, quantity: Quantity, amount: float = 1.0) -> None:
        second = int(self._clock())
        slot = second % self._span
        if self._stamps[slot] != second:
            self._stamps[slot] = second
            for values in self._values.values():
                values[slot] = 0.0
        self._values[quantity][slot] += amount

    def _sum(self, quantity: Quantity, seconds: int, lag: int = 0) -> float:
        """The quantity over the `seconds` seconds ending `lag` seconds before the current one (included at 0)."""
        last = int(self._clock()) - lag
        values = self._values[quantity]
        return sum(values[i] for i, stamp in enumerate(self._stamps) if last - seconds < stamp <= last)

    def rates(self, now_s: int = 5) -> RecentRates:
        """The window's totals as rates; `tokens_per_s_now` is over the last `now_s` whole seconds."""
        age = max(self._clock() - self._born, 1e-3)
        window = min(float(self._span), age)
        recent = max(min(float(now_s), age - 1), 1.0)
        ttft_n = self._sum("ttft_n", self._span)
        prompt = self._sum("prompt_tokens", self._span)
        return RecentRates(
            tokens_per_s=self._sum("completion_tokens", self._span) / window,
            tokens_per_s_now=self._sum("completion_tokens", now_s, lag=1) / recent,
            ttft_s=self._sum("ttft_s", self._span) / ttft_n if ttft_n else None,
            requests=int(self._sum("requests", self._span)),
            rejected=int(self._sum("rejected", self._span)),
            cache_hit_rate=self._sum("cached_tokens", self._span) / prompt if prompt else None,
            window_s=window,
        )
