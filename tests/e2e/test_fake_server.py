"""A real server process over real HTTP, with the fake backend: disconnects and crashes."""

import asyncio

import httpx
import openai
import pytest

ENDLESS = {"model": "fake", "prompt": "tick tock", "max_tokens": 90_000, "temperature": 0}
SLOTS = 4  # 2 workers x capacity 2


async def assert_request_completes(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        response = await http.post("/v1/completions", json={"model": "fake", "prompt": "a b", "max_tokens": 2})
    assert response.status_code == 200
    assert response.json()["choices"][0]["finish_reason"] == "length"


async def test_closing_a_stream_cancels_its_generation(fake_server):
    # Fill every slot with an endless stream, then hang up. Uncancelled, they would hold the
    # slots for half an hour and the next request could not run.
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=60) as http:
        for _ in range(SLOTS):
            async with http.stream("POST", "/v1/completions", json={**ENDLESS, "stream": True}) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        break
    await asyncio.wait_for(assert_request_completes(fake_server.base_url), 60)


def metric(text: str, name: str) -> float:
    """The fake model's sample of `name`; 0 while a labelled counter has none."""
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(f'{name}{{model="fake"}}')]
    return values[0] if values else 0.0


TYPED_STREAMS = {
    "/v1/messages": (
        {"messages": [{"role": "user", "content": "tick tock"}], "max_tokens": 90_000},
        "event: content_block_delta",
    ),
    "/v1/responses": ({"input": "tick tock", "store": False}, "event: response.output_text.delta"),
}


@pytest.mark.parametrize("path", TYPED_STREAMS)
async def test_leaving_a_typed_event_stream_cancels_its_generation_in_the_worker(fake_server, path):
    body, token_event = TYPED_STREAMS[path]
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=60) as http:
        cancelled = metric((await http.get("/metrics")).text, "warmserve_requests_cancelled_total")
        for _ in range(SLOTS):
            async with http.stream("POST", path, json={"model": "fake", **body, "stream": True}) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line == token_event:
                        break
        for _ in range(600):  # each hang-up reaches its worker, which frees the slot
            metrics = (await http.get("/metrics")).text
            if metric(metrics, "warmserve_requests_running") == 0:
                break
            await asyncio.sleep(0.05)
        assert metric(metrics, "warmserve_requests_running") == 0
        assert metric(metrics, "warmserve_requests_cancelled_total") == cancelled + SLOTS
    await asyncio.wait_for(assert_request_completes(fake_server.base_url), 60)


async def test_a_client_that_gives_up_on_a_plain_request_cancels_it(fake_server):
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=httpx.Timeout(30, read=0.5)) as http:
        for _ in range(SLOTS):
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/v1/completions", json=ENDLESS)
    await asyncio.wait_for(assert_request_completes(fake_server.base_url), 60)


async def test_a_worker_crash_mid_stream_ends_the_stream_with_an_error_and_the_server_recovers(fake_server):
    client = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="x", max_retries=0, timeout=60)
    stream = await client.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "please CRASH now"}], max_tokens=50, stream=True
    )
    received = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk)

    with pytest.raises(openai.APIError, match="stopped"):
        await read_all()
    assert received[0].choices[0].delta.role == "assistant"
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=5) as http:
        for _ in range(300):
            if (await http.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await http.get("/ready")).status_code == 200
    await assert_request_completes(fake_server.base_url)


async def test_a_worker_crash_during_a_plain_request_is_a_503_worker_died(fake_server):
    body = {"model": "fake", "prompt": "CRASH again", "max_tokens": 50}
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=60) as http:
        response = await http.post("/v1/completions", json=body)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "worker_died"
        assert response.json()["error"]["type"] == "server_error"
        for _ in range(300):
            if (await http.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.1)
    await assert_request_completes(fake_server.base_url)
