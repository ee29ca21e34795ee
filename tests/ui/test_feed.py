"""The dashboard's feed (/ui/events) over real HTTP, from a fake-backend server: what a page receives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_fake_server
from warmserve.testing import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("feed")
    server = start_fake_server(tmp, {"token_delay_s": 0.01, "capacity": 3}, workers=2)
    yield server
    server.stop()


def frames(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    kind = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))


def test_the_feed_starts_with_a_snapshot_and_stats_then_counts_a_request(server: ServerProcess):
    client = server.openai_client()
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as http,
        http.stream("GET", "/ui/events", params={"interval_s": 0.2}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        stream = frames(response)
        assert next(stream)[0] == "snapshot"
        kind, first = next(stream)
        assert kind == "stats"
        [fake] = first["models"]
        assert (fake["model"], fake["state"], fake["ready_workers"], fake["configured_workers"]) == (
            "fake",
            "ready",
            2,
            2,
        )
        assert [(w["state"], w["slots"], w["restarts"], w["last_exit"]) for w in fake["workers"]] == [
            ("ready", 3, 0, None),
            ("ready", 3, 0, None),
        ]
        assert (fake["requests"], fake["ttft_s"], fake["cache_hit_rate"]) == (0, None, None)
        answer = client.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "one two three four"}], max_tokens=20
        )
        assert answer.usage is not None
        for kind, event in stream:
            if kind == "stats" and event["models"][0]["requests"] == 1:
                counted = event["models"][0]
                break
        assert counted["tokens_per_s"] > 0
        assert counted["ttft_s"] is not None
        assert counted["ttft_s"] > 0
        assert counted["cache_hit_rate"] is not None
        assert counted["rejected"] == 0


def test_the_feed_pushes_a_state_change_between_stats(server: ServerProcess):
    with (
        httpx.Client(base_url=server.base_url, timeout=60) as http,
        http.stream("GET", "/ui/events", params={"interval_s": 60}) as response,
    ):
        stream = frames(response)
        assert [next(stream)[0], next(stream)[0]] == ["snapshot", "stats"]
        assert http.post("/admin/models/fake/unload", params={"wait": "false"}).status_code == 202
        states = []
        for kind, event in stream:
            assert kind != "stats"  # the next one is a minute away: these came as they happened
            if kind == "state":
                states.append(event["state"])
                if event["state"] == "unloaded":
                    break
        assert states == ["draining", "stopping", "unloaded"]
        assert http.post("/admin/models/fake/load").status_code == 200
