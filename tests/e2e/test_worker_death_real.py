"""End to end: a llama.cpp worker SIGKILLed under load loses nothing.

The embedded SmolLM2 on 2 workers of 6 slots, 8 streamed and 4 plain chat requests running;
one worker is killed once every stream has begun (the plain requests' text is then held in the
worker, lost with it, and must come back whole). Every request completes, without an error,
and at temperature 0 each answer (text, finish reason, usage) equals the undisturbed run's.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, start_server
from warmserve.config import EMBEDDED_MODEL_NAME

pytestmark = pytest.mark.e2e
MODEL = EMBEDDED_MODEL_NAME
TOPICS = ["the sea", "snow", "a city at night", "bread", "rivers", "the moon", "trains", "gardens"]
STREAMS, PLAIN = 8, 4

Answer = tuple[str, str | None, int, int]  # text, finish reason, prompt tokens, completion tokens


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Its own server: these tests kill its workers."""
    tmp: Path = tmp_path_factory.mktemp("worker-death")
    server = start_server(["--workers", "2", "--threads", "1", "--n-ctx", "1024", "--slots", "6"], tmp)
    yield server
    server.stop()


def ask(index: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a few sentences about {TOPICS[index % len(TOPICS)]}."}]


def run_load(server: ServerProcess, kill: int | None) -> list[Answer]:
    """Every request's answer, in order; with `kill`, that worker is killed once all streams have begun."""
    client = server.openai_client()
    answers: list[Answer | BaseException | None] = [None] * (STREAMS + PLAIN)
    begun = threading.Barrier(STREAMS + 1 if kill is not None else STREAMS)  # the killer waits for it too

    def stream(index: int) -> None:
        try:
            chunks = client.chat.completions.create(
                model=MODEL,
                messages=ask(index),
                max_tokens=48,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            text, reason, usage = "", None, None
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    if not text:
                        begun.wait(120)
                    text += chunk.choices[0].delta.content
                if chunk.choices and chunk.choices[0].finish_reason:
                    reason = chunk.choices[0].finish_reason
                usage = chunk.usage or usage
            assert usage is not None
            answers[index] = (text, reason, usage.prompt_tokens, usage.completion_tokens)
        except BaseException as exc:
            answers[index] = exc

    def plain(index: int) -> None:
        try:
            answer = client.chat.completions.create(model=MODEL, messages=ask(index), max_tokens=48, temperature=0)
            assert answer.usage is not None
            choice = answer.choices[0]
            usage = answer.usage
            answers[index] = (
                choice.message.content or "",
                choice.finish_reason,
                usage.prompt_tokens,
                usage.completion_tokens,
            )
        except BaseException as exc:
            answers[index] = exc

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(STREAMS)]
    threads += [threading.Thread(target=plain, args=(i,)) for i in range(STREAMS, STREAMS + PLAIN)]
    for thread in threads:
        thread.start()
    if kill is not None:
        begun.wait(180)
        kill_worker(server, kill)
    for thread in threads:
        thread.join(300)
    failed = [a for a in answers if not isinstance(a, tuple)]
    assert not failed, failed
    return [a for a in answers if isinstance(a, tuple)]


def kill_worker(server: ServerProcess, index: int) -> None:
    workers = httpx.get(f"{server.base_url}/admin/models").json()["data"][0]["workers"]
    [worker] = [w for w in workers if w["index"] == index]
    assert worker["running"] > 0  # it holds requests: they must carry on elsewhere
    os.kill(worker["pid"], signal.SIGKILL)


def resumed(server: ServerProcess) -> float:
    for line in httpx.get(f"{server.base_url}/metrics").text.splitlines():
        if line.startswith("warmserve_requests_resumed_total{"):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(scope="module")
def undisturbed(server: ServerProcess) -> list[Answer]:
    answers = run_load(server, kill=None)
    assert all(text and completion for text, _, _, completion in answers)
    return answers


@pytest.mark.timeout(600)
@pytest.mark.parametrize("victim", [0, 1])
def test_a_killed_worker_loses_no_request_and_changes_no_answer(server, undisturbed, victim):
    before = resumed(server)
    assert run_load(server, kill=victim) == undisturbed
    assert resumed(server) > before
