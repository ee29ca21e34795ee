"""The transformers engine in this process: cancellation leaves the batch at once."""

from __future__ import annotations

import pytest

from warmserve.config import ModelSpec
from warmserve.generation import ChatMessage, GenerationRequest, SamplingParams, Started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def engine(hf_cache_dir):
    from warmserve.backends.transformers import TransformersEngine

    return TransformersEngine(ModelSpec(backend="transformers", threads=1, cache_dir=str(hf_cache_dir)), 0)


def chat(question: str, max_tokens: int = 12) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", question),),
        sampling=SamplingParams(temperature=0, max_tokens=max_tokens),
    )


def drain(engine, events: list) -> None:
    while engine.running:
        events.extend(engine.step())


def test_a_cancelled_sequence_leaves_the_batch_and_the_others_are_unchanged(engine):
    keeper = chat("What is 2+2?")
    alone: list = []
    engine.add("kept", keeper)
    drain(engine, alone)

    assert isinstance(engine.add("gone", chat("Who wrote Hamlet?", 200)), Started)
    engine.add("kept", keeper)
    together = []
    for _ in range(3):
        together.extend(engine.step())
    assert engine.running == 2
    engine.cancel("gone")
    assert engine.running == 1
    after_cancel: list = []
    drain(engine, after_cancel)
    assert {request_id for request_id, _ in after_cancel} == {"kept"}
    kept = [event for request_id, event in together + after_cancel if request_id == "kept"]
    assert kept == [event for _, event in alone]
