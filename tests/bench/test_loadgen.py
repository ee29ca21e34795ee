"""How the load generator reads answers, against servers played by httpx.MockTransport."""

import asyncio
import json

import httpx

from warmserve.bench.runner import run_sweep
from warmserve.bench.settings import BenchSettings


def sse(*events):
    body = "".join(f"data: {json.dumps(e) if isinstance(e, dict) else e}\n\n" for e in events)
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


def chat_chunk(text):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def settings(**overrides):
    defaults = {"model": "m", "concurrency": [1, 2], "requests": 3, "warmup": 0, "endpoint": "chat"}
    return BenchSettings(**(defaults | overrides))


async def run(handler, **overrides):
    sweep = await run_sweep(settings(**overrides), transport=httpx.MockTransport(handler))
    return sweep.summaries, [r for level in sweep.levels for r in level.records]


async def test_without_usage_the_tokens_are_the_content_chunks():
    summaries, records = await run(lambda request: sse(chat_chunk("a"), chat_chunk(" b"), "[DONE]"))
    assert [s.completed for s in summaries] == [3, 3]
    assert {(r.tokens, r.tokens_from, len(r.itl_s)) for r in records} == {(2, "chunks", 1)}


async def test_the_request_asks_for_usage_and_the_usage_chunk_sets_the_token_count():
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}}
        return sse({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, chat_chunk("hello"), usage, "[DONE]")

    _, records = await run(handler, max_tokens=5, prompt_tokens=20)
    assert {(r.tokens, r.tokens_from, r.prompt_tokens) for r in records} == {(5, "usage", 9)}
    assert bodies[0]["stream_options"] == {"include_usage": True}
    assert bodies[0]["max_tokens"] == 5
    assert len(bodies[0]["messages"][0]["content"].split()) == 20
    assert len({b["messages"][0]["content"] for b in bodies}) == len(bodies)  # no prompt repeats


async def test_an_error_event_in_the_stream_fails_the_request_with_its_message():
    error = {"error": {"message": "worker died", "type": "server_error", "code": "worker_died"}}
    summaries, records = await run(lambda request: sse(chat_chunk("a"), error))
    assert all(s.errors == 3 and s.completed == 0 for s in summaries)
    assert {r.error for r in records} == {"worker died"}


async def test_a_stream_cut_short_without_done_is_an_error():
    summaries, records = await run(lambda request: sse(chat_chunk("a")))
    assert [s.errors for s in summaries] == [3, 3]
    assert {r.error for r in records} == {"the stream ended without 'data: [DONE]'"}


async def test_an_http_error_keeps_the_status_and_the_servers_message():
    body = {"error": {"message": "Rate limit reached", "type": "rate_limit", "code": None}}
    _, records = await run(lambda request: httpx.Response(429, json=body))
    assert {(r.outcome, r.status_code, r.error) for r in records} == {("error", 429, "HTTP 429: Rate limit reached")}


async def test_a_plain_completion_counts_usage_and_has_no_token_timings():
    answer = {
        "choices": [{"index": 0, "text": "x y", "finish_reason": "length"}],
        "usage": {"completion_tokens": 2},
    }
    summaries, records = await run(lambda r: httpx.Response(200, json=answer), stream=False, endpoint="completions")
    assert {(r.tokens, r.ttft_s, r.itl_s, r.finish_reason) for r in records} == {(2, None, (), "length")}
    assert summaries[0].ttft_s.p50 is None


async def test_the_model_defaults_to_the_first_the_server_lists():
    def handler(request):
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "first"}, {"id": "second"}]})
        assert json.loads(request.content)["model"] == "first"
        return sse(chat_chunk("a"), "[DONE]")

    sweep = await run_sweep(settings(model=None), transport=httpx.MockTransport(handler))
    assert sweep.model == "first"


async def test_at_the_time_limit_running_requests_are_cancelled_and_the_rest_never_start():
    async def never_answers(request):
        await asyncio.sleep(3600)

    summaries, records = await run(never_answers, concurrency=[2], requests=5, max_seconds=0.2)
    [summary] = summaries
    assert (summary.completed, summary.errors, summary.cancelled, summary.not_started) == (0, 0, 2, 3)
    assert {r.outcome for r in records} == {"cancelled"}
