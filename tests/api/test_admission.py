"""Admission control over HTTP: every request is answered or rejected, none lost or doubled."""

import asyncio
import re

from tests.api.conftest import serve_with_workers
from tests.conftest import fake_settings


async def test_a_burst_far_over_capacity_accounts_for_every_request():
    # 1 worker x capacity 2, 3 may wait: 40 requests at once, each sent exactly once.
    settings = fake_settings(capacity=2, token_delay_s=0.01, model={"max_waiting": 3})
    async with serve_with_workers(settings) as http:
        bodies = [{"model": "fake", "prompt": f"req{i} a b", "max_tokens": 3, "temperature": 0} for i in range(40)]
        responses = await asyncio.gather(*(http.post("/v1/completions", json=body) for body in bodies))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}
        answered = [(i, r) for i, r in enumerate(responses) if r.status_code == 200]
        rejected = [r for r in responses if r.status_code == 429]
        assert len(answered) >= 5  # at least what fits at once
        assert rejected, "a burst 8x over capacity must be turned away in part"
        for i, response in answered:  # each answer belongs to its own request
            assert response.json()["choices"][0]["text"].split()[-1] == f"req{i}"
        assert len({r.json()["id"] for _, r in answered}) == len(answered)
        for response in rejected:
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"]["code"] == "overloaded"
            assert response.json()["error"]["type"] == "rate_limit_error"
        metrics = (await http.get("/metrics")).text
        assert (
            f'warmserve_requests_rejected_total{{model="fake",reason="overloaded"}} {float(len(rejected))}' in metrics
        )
        assert 'warmserve_requests_running{model="fake"} 0.0' in metrics
        assert 'warmserve_requests_waiting{model="fake"} 0.0' in metrics


async def test_a_request_that_waits_past_the_queue_timeout_gets_503():
    settings = fake_settings(capacity=1, token_delay_s=0.01, model={"queue_timeout_s": 0.3})
    async with serve_with_workers(settings) as http:
        hog = asyncio.create_task(
            http.post("/v1/completions", json={"model": "fake", "prompt": "slow", "max_tokens": 200})
        )
        await asyncio.sleep(0.1)
        late = await http.post("/v1/completions", json={"model": "fake", "prompt": "late", "max_tokens": 2})
        assert late.status_code == 503
        assert late.json()["error"]["code"] == "queue_timeout"
        assert late.headers["retry-after"] == "1"
        assert (await hog).status_code == 200


async def test_a_request_over_its_time_limit_is_cancelled_with_504_and_frees_its_slot():
    settings = fake_settings(capacity=1, token_delay_s=0.01, model={"request_timeout_s": 0.5})
    async with serve_with_workers(settings) as http:
        endless = await http.post("/v1/completions", json={"model": "fake", "prompt": "x", "max_tokens": 100})
        assert endless.status_code == 504
        error = endless.json()["error"]
        assert error["code"] == "request_timeout"
        assert re.search(r"within 0.5 s", error["message"])
        quick = await http.post("/v1/completions", json={"model": "fake", "prompt": "y", "max_tokens": 2})
        assert quick.status_code == 200
        assert 'warmserve_requests_timed_out_total{model="fake"} 1.0' in (await http.get("/metrics")).text


async def test_a_model_whose_workers_die_while_loading_becomes_unhealthy_and_fails_fast():
    async with serve_with_workers(fake_settings(crash_on_load=True), wait_ready=False) as http:
        for _ in range(200):  # backoff 0.5 + 1 + 2 s before the third failure
            card = (await http.get("/v1/models/fake")).json()
            if card["state"] == "unhealthy":
                break
            await asyncio.sleep(0.05)
        assert card["state"] == "unhealthy"
        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["models"]["fake"]["state"] == "unhealthy"
        response = await http.post("/v1/completions", json={"model": "fake", "prompt": "x"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_unavailable"
        assert "while loading" in response.json()["error"]["message"]
        metrics = (await http.get("/metrics")).text
        assert 'warmserve_model_healthy{model="fake"} 0.0' in metrics
        assert 'warmserve_worker_restarts_total{model="fake"} 2.0' in metrics
