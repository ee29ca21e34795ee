"""The dashboard's last minute: per-second buckets that forget what is older than the span."""

from __future__ import annotations

import pytest

from warmserve.recent import RecentWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rates_cover_the_last_minute_and_forget_older_seconds():
    clock = Clock()
    window = RecentWindow(span_s=60, clock=clock)
    clock.now += 120  # the server has run for two minutes
    window.add("completion_tokens", 600)
    window.add("prompt_tokens", 100)
    window.add("cached_tokens", 25)
    window.add("ttft_s", 0.5)
    window.add("ttft_n")
    window.add("ttft_s", 1.5)
    window.add("ttft_n")
    window.add("rejected")
    rates = window.rates()
    assert rates.tokens_per_s == pytest.approx(10.0)
    assert rates.ttft_s == pytest.approx(1.0)
    assert rates.cache_hit_rate == pytest.approx(0.25)
    assert rates.rejected == 1
    clock.now += 59
    assert window.rates().tokens_per_s == pytest.approx(10.0)
    clock.now += 1
    gone = window.rates()
    assert (gone.tokens_per_s, gone.ttft_s, gone.cache_hit_rate, gone.rejected) == (0.0, None, None, 0)


def test_a_slot_reused_a_minute_later_starts_from_zero():
    clock = Clock()
    window = RecentWindow(span_s=60, clock=clock)
    window.add("requests", 5)
    clock.now += 60  # the same slot, a new second
    window.add("requests", 1)
    assert window.rates().requests == 1


def test_now_is_the_last_whole_seconds_and_a_young_window_divides_by_its_age():
    clock = Clock()
    window = RecentWindow(span_s=60, clock=clock)
    clock.now += 10
    window.add("completion_tokens", 50)  # this second is not over: not yet "now"
    assert window.rates().tokens_per_s_now == 0.0
    assert window.rates().tokens_per_s == pytest.approx(5.0)  # 50 over 10 s of life
    clock.now += 1
    assert window.rates(now_s=5).tokens_per_s_now == pytest.approx(10.0)
