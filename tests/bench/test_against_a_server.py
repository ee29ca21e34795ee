"""`warmserve bench` against a real `warmserve serve` process with the fake backend."""

import json
from collections.abc import Iterator

import pytest

from tests.conftest import ServerProcess, start_fake_server
from warmserve.bench.runner import run_sweep
from warmserve.bench.settings import BenchSettings
from warmserve.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    fake = {"token_delay_s": 0.002, "capacity": 4}
    server = start_fake_server(tmp_path_factory.mktemp("bench-server"), fake)
    yield server
    server.stop()


def bench_args(server, *extra):
    return ["bench", "--base-url", f"{server.base_url}/v1", "--requests", "5", "--max-tokens", "7", *extra]


def test_the_sweep_accounts_for_every_request_and_writes_json_and_png(server, tmp_path, capsys):
    out, plot = tmp_path / "results" / "bench.json", tmp_path / "bench.png"
    code = main(
        bench_args(server, "--concurrency", "1,2,4", "--prompt-tokens", "30", "--out", str(out), "--plot", str(plot))
    )

    assert code == 0
    document = json.loads(out.read_text())
    assert [level["concurrency"] for level in document["levels"]] == [1, 2, 4]
    for level in document["levels"]:
        assert (level["completed"], level["errors"], level["cancelled"], level["not_started"]) == (5, 0, 0, 0)
        assert len({r["number"] for r in level["requests"]}) == 5  # five different requests
        assert {(r["tokens"], r["tokens_from"], r["content_chunks"]) for r in level["requests"]} == {(7, "usage", 7)}
        assert level["generated_tokens"] == 35
        assert level["prompt_tokens_mean"] == 30  # the fake counts words, so the length is exact
        assert level["finish_reasons"] == {"length": 5}
        assert level["ttft_s"]["p50"] > 0
        assert level["itl_s"]["p95"] >= level["itl_s"]["p50"] > 0
        # 6 gaps per stream: a stream's decode speed is about the inverse of its typical gap
        assert 0.5 < level["decode_tokens_per_s"] * level["itl_s"]["p50"] < 2
    assert document["model"] == "fake"
    assert document["machine"]["cpu_count"] >= 1
    assert {"python", "warmserve", "httpx"} <= document["versions"].keys()
    assert document["settings"]["concurrency"] == [1, 2, 4]
    assert plot.read_bytes().startswith(PNG_SIGNATURE)
    table = capsys.readouterr().out
    assert "TTFT p95 ms" in table
    assert "5/5" in table


@pytest.mark.parametrize("endpoint", ["chat", "completions", "responses", "messages"])
@pytest.mark.parametrize("stream", [True, False])
async def test_every_wire_format_streamed_or_not_counts_every_generated_token(server, endpoint, stream):
    settings = BenchSettings(
        base_url=f"{server.base_url}/v1",
        endpoint=endpoint,
        stream=stream,
        concurrency=[3],
        requests=4,
        max_tokens=6,
    )
    sweep = await run_sweep(settings)
    [summary] = sweep.summaries
    assert (summary.completed, summary.generated_tokens) == (4, 24)
    assert (summary.ttft_s.p50 is not None) == stream
    assert summary.prompt_tokens_mean is not None
    assert summary.prompt_tokens_mean > 0
    assert set(summary.finish_reasons) == {
        "incomplete" if endpoint == "responses" else "max_tokens" if endpoint == "messages" else "length"
    }


def test_an_unknown_model_makes_every_request_an_error_with_the_servers_message(server, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(bench_args(server, "--model", "no-such-model", "--concurrency", "1,2", "--out", str(out)))

    assert code == 1
    levels = json.loads(out.read_text())["levels"]
    assert [(level["completed"], level["errors"]) for level in levels] == [(0, 5), (0, 5)]
    for level in levels:
        [(message, count)] = level["error_messages"].items()
        assert count == 5
        assert message.startswith("HTTP 404: The model 'no-such-model' does not exist")
        assert {r["status_code"] for r in level["requests"]} == {404}
    assert "5 x HTTP 404" in capsys.readouterr().out
