"""A real server process over real HTTP, with the fake backend: disconnects and crashes."""

import asyncio
import os
import signal

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


async def wait_ready(http: httpx.AsyncClient) -> None:
    for _ in range(300):
        if (await http.get("/ready")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    assert (await http.get("/ready")).status_code == 200


async def test_a_request_that_crashes_every_worker_it_runs_on_ends_its_stream_as_poison(fake_server):
    client = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="x", max_retries=0, timeout=60)
    stream = await client.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "please CRASH now"}], max_tokens=50, stream=True
    )
    received = []

    async def read_all() -> None:
        async for chunk in stream:
            received.append(chunk)

    with pytest.raises(openai.APIError, match="not tried again"):
        await read_all()
    assert received[0].choices[0].delta.role == "assistant"
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=5) as http:
        await wait_ready(http)
        assert metric((await http.get("/metrics")).text, "warmserve_poison_requests_total") >= 1
    await assert_request_completes(fake_server.base_url)


async def test_a_plain_request_that_crashes_every_worker_it_runs_on_is_a_422_poison_request(fake_server):
    body = {"model": "fake", "prompt": "CRASH again", "max_tokens": 50}
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=60) as http:
        response = await http.post("/v1/completions", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "poison_request"
        assert "2 workers of model 'fake'" in response.json()["error"]["message"]
        await wait_ready(http)
    await assert_request_completes(fake_server.base_url)


async def test_a_killed_worker_is_invisible_to_streamed_and_plain_openai_clients(fake_server):
    """Every worker running them is killed mid-answer (both workers here): both answers equal undisturbed ones."""
    client = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="x", max_retries=0, timeout=60)
    chat = {"model": "fake", "messages": [{"role": "user", "content": "red green blue"}], "max_tokens": 120}
    completion = {"model": "fake", "prompt": "alpha beta gamma delta", "max_tokens": 120, "temperature": 0}
    undisturbed_chat = (await client.chat.completions.create(**chat, temperature=0)).choices[0].message.content
    undisturbed_completion = (await client.completions.create(**completion)).choices[0].text
    async with httpx.AsyncClient(base_url=fake_server.base_url, timeout=10) as http:
        await wait_ready(http)
        resumed_before = metric((await http.get("/metrics")).text, "warmserve_requests_resumed_total")
        stream = await client.chat.completions.create(**chat, temperature=0, stream=True)
        plain = asyncio.ensure_future(client.completions.create(**completion))
        streamed, chunks = "", aiter(stream)
        while len(streamed) < 20:  # some of the answer is out
            chunk = await anext(chunks)
            streamed += chunk.choices[0].delta.content or "" if chunk.choices else ""
        running = [w for w in (await http.get("/admin/models")).json()["data"][0]["workers"] if w["running"]]
        assert sum(w["running"] for w in running) == 2
        for worker in running:
            os.kill(worker["pid"], signal.SIGKILL)
        async for chunk in chunks:
            streamed += chunk.choices[0].delta.content or "" if chunk.choices else ""
        assert streamed == undisturbed_chat
        assert (await plain).choices[0].text == undisturbed_completion
        assert (await plain).usage.completion_tokens == 120
        metrics = (await http.get("/metrics")).text
        assert metric(metrics, "warmserve_requests_resumed_total") >= resumed_before + 2  # a race may add one more
