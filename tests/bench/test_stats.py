"""The numbers `warmserve bench` reports, on records whose answers are known."""

import pytest

from warmserve.bench.loadgen import LevelRun, RequestRecord
from warmserve.bench.stats import percentile, summarise


def test_percentiles_interpolate_between_ranks_like_numpy():
    values = [7, 1, 10, 3, 5, 2, 9, 4, 8, 6]  # 1..10, unordered
    assert percentile(values, 0) == 1
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 100) == 10


def test_percentile_of_one_value_is_that_value_and_of_none_is_none():
    assert percentile([0.25], 95) == 0.25
    assert percentile([], 50) is None


def test_percentile_outside_0_to_100_is_refused():
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def ok(number, tokens, ttft, gaps, e2e):
    return RequestRecord(
        number=number,
        outcome="ok",
        started_s=0.0,
        e2e_s=e2e,
        ttft_s=ttft,
        itl_s=gaps,
        tokens=tokens,
        tokens_from="usage",
        prompt_tokens=10,
        finish_reason="length",
    )


def test_a_level_summary_counts_every_outcome_and_rates_only_completed_requests():
    records = (
        ok(0, 4, 0.1, (0.01, 0.02, 0.03), 1.0),
        ok(1, 4, 0.3, (0.04, 0.05, 0.06), 3.0),
        RequestRecord(number=2, outcome="error", started_s=0, e2e_s=0.1, error="HTTP 500: boom"),
        RequestRecord(number=3, outcome="error", started_s=0, e2e_s=0.1, error="HTTP 500: boom"),
        RequestRecord(number=4, outcome="cancelled", started_s=0, e2e_s=0.5),
    )
    summary = summarise(LevelRun(concurrency=2, planned=6, elapsed_s=4.0, records=records))

    assert (summary.completed, summary.errors, summary.cancelled, summary.not_started) == (2, 2, 1, 1)
    assert summary.requests_per_s == pytest.approx(0.5)
    assert summary.generated_tokens == 8
    assert summary.tokens_per_s == pytest.approx(2.0)
    assert summary.ttft_s.p50 == pytest.approx(0.2)
    assert summary.itl_s.p50 == pytest.approx(0.035)  # gaps of both requests pooled
    assert summary.decode_tokens_per_s == pytest.approx((3 / 0.06 + 3 / 0.15) / 2)  # median of per-stream rates
    assert summary.e2e_s.p95 == pytest.approx(2.9)
    assert summary.prompt_tokens_mean == 10
    assert summary.finish_reasons == {"length": 2}
    assert summary.error_messages == {"HTTP 500: boom": 2}


def test_decode_speed_leaves_out_streams_with_a_single_chunk():
    records = (ok(0, 1, 0.1, (), 0.1), ok(1, 3, 0.1, (0.1, 0.3), 0.5))
    summary = summarise(LevelRun(concurrency=1, planned=2, elapsed_s=1.0, records=records))
    assert summary.decode_tokens_per_s == pytest.approx(2 / 0.4)
