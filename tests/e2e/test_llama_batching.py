"""The llama.cpp engine's continuous batching and prefix reuse, on the real SmolLM2 model."""

from __future__ import annotations

import collections
from collections.abc import Sequence

import pytest

from warmserve.backends.llama.decode_grouping import DecodeWay
from warmserve.config import ModelSpec
from warmserve.generation import ChatMessage, Finished, GenerationRequest, SamplingParams, TextDelta

pytestmark = pytest.mark.e2e
QUESTIONS = ["Name three colours of the rainbow.", "What is 2+2?", "Write a haiku about the sea.", "Who wrote Hamlet?"]


def engine(**spec):
    from warmserve.backends.llama.engine import LlamaCppEngine

    return LlamaCppEngine(ModelSpec(**{"threads": 1, "n_ctx": 512, "slots": 4, **spec}))


def chat(*turns: str, max_tokens: int = 24, temperature: float = 0.0, seed: int | None = None):
    roles = ["user", "assistant"]
    messages = tuple(ChatMessage(roles[i % 2], text) for i, text in enumerate(turns))
    return GenerationRequest(
        messages=messages, sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    )


def run(eng, requests: dict[str, GenerationRequest]) -> dict[str, tuple[str, Finished]]:
    """Add the requests, step until the engine is idle; every request's text and Finished."""
    for request_id, request in requests.items():
        eng.add(request_id, request)
    texts: dict[str, str] = collections.defaultdict(str)
    finished: dict[str, Finished] = {}
    while eng.running:
        for request_id, event in eng.step():
            if isinstance(event, TextDelta):
                texts[request_id] += event.text
            elif isinstance(event, Finished):
                finished[request_id] = event
    return {rid: (texts[rid], done) for rid, done in finished.items()}


@pytest.fixture(scope="module")
def solo_answers():
    eng = engine(slots=1)
    answers = {q: run(eng, {"solo": chat(q, max_tokens=40)})["solo"][0] for q in QUESTIONS}
    eng.close()
    return answers


def test_each_sequence_in_a_batch_gets_exactly_its_solo_answer(solo_answers):
    eng = engine()
    together = run(eng, {q: chat(q, max_tokens=40) for q in QUESTIONS})
    assert {q: text for q, (text, _) in together.items()} == solo_answers
    eng.close()


class FixedGrouping:
    """Decode steps of several sequences always split (one call each) or always batched, on the
    worker's own thread or on every thread lent to it."""

    def __init__(self, split: bool, lent: bool) -> None:
        self.fixed, self.lent = split, lent
        self.ways: set[DecodeWay] = set()

    def choose(self, sequences: int, threads: Sequence[int]) -> DecodeWay:
        way = DecodeWay(self.fixed and sequences >= 2, threads[-1] if self.lent else threads[0])
        self.ways.add(way)
        return way

    def record(self, sequences: int, way: DecodeWay, seconds: float) -> None:
        pass


@pytest.mark.parametrize(
    ("split", "lent"), [(True, False), (False, False), (False, True)], ids=["one-call-each", "one-batch", "lent-cores"]
)
def test_decode_steps_split_batched_or_on_lent_cores_give_each_sequence_its_solo_answer(solo_answers, split, lent):
    eng = engine()
    eng._grouping = grouping = FixedGrouping(split, lent)
    eng.set_threads(2)  # an idle peer lends its core
    together = run(eng, {q: chat(q, max_tokens=40) for q in QUESTIONS})
    assert {q: text for q, (text, _) in together.items()} == solo_answers
    assert any(way.split for way in grouping.ways) == split
    assert {way.threads for way in grouping.ways} == ({2} if lent else {1})
    eng.close()


def test_a_long_prompt_prefilled_in_chunks_beside_running_decodes_changes_nothing(solo_answers):
    eng = engine(n_batch=16)  # a 60-token prompt takes several steps next to the decoding sequences
    long_question = "Please answer briefly. " * 10 + QUESTIONS[3]
    eng.add("first", chat(QUESTIONS[0], max_tokens=40))
    eng.step()
    results = run(eng, {"long": chat(long_question, max_tokens=20), "second": chat(QUESTIONS[1], max_tokens=40)})
    assert results["first"][0] == solo_answers[QUESTIONS[0]]
    assert results["second"][0] == solo_answers[QUESTIONS[1]]
    alone = engine(slots=1, n_batch=16)  # the same chunking, without neighbours
    assert results["long"][0] == run(alone, {"x": chat(long_question, max_tokens=20)})["x"][0]
    alone.close()
    eng.close()


def system_chat(system: str, question: str) -> GenerationRequest:
    messages = (ChatMessage("system", system), ChatMessage("user", question))
    return GenerationRequest(messages=messages, sampling=SamplingParams(temperature=0, max_tokens=24))


def test_a_shared_system_prompt_is_computed_once_and_the_answer_equals_a_cold_run():
    system = "You are a patient teacher. Answer in one short sentence, then stop. " * 3
    warm = engine()
    first = run(warm, {"a": system_chat(system, QUESTIONS[0])})["a"][1]
    text, reused = run(warm, {"b": system_chat(system, QUESTIONS[3])})["b"]
    assert first.cached_tokens == 0
    assert reused.cached_tokens > 40  # the system prompt's tokens
    cold = engine()
    cold_text, cold_finish = run(cold, {"b": system_chat(system, QUESTIONS[3])})["b"]
    assert (cold_finish.cached_tokens, cold_text) == (0, text)
    assert cold_finish.prompt_tokens == reused.prompt_tokens
    warm.close()
    cold.close()


def test_the_next_chat_turn_reuses_the_conversation_so_far_and_answers_as_a_cold_run():
    warm = engine()
    first_answer, first = run(warm, {"turn1": chat(QUESTIONS[0])})["turn1"]
    second = chat(QUESTIONS[0], first_answer, "And three more?")
    reused_text, reused = run(warm, {"turn2": second})["turn2"]
    assert reused.cached_tokens > first.prompt_tokens  # the question and the answer
    cold = engine()
    cold_text, cold_finish = run(cold, {"turn2": second})["turn2"]
    assert cold_finish.cached_tokens == 0
    assert reused_text == cold_text
    warm.close()
    cold.close()


def test_a_seeded_sample_does_not_depend_on_its_neighbours():
    eng = engine()
    alone = run(eng, {"a": chat(QUESTIONS[2], temperature=0.9, seed=42)})["a"][0]
    crowded = run(
        eng,
        {
            "x": chat(QUESTIONS[0], temperature=0.9, seed=1),
            "a": chat(QUESTIONS[2], temperature=0.9, seed=42),
            "y": chat(QUESTIONS[1], temperature=0.9),
        },
    )
    assert crowded["a"][0] == alone
    eng.close()


LONG = " ".join(f"Fact {i}: the sky over field {i} was blue and the grass was green." for i in range(40))


def test_a_long_prompt_answers_the_same_alone_and_beside_other_requests():
    """Over 800 prompt tokens: prefilled in chunks, decoded with a long KV cache, beside short requests."""
    question = chat(LONG + " Which colour was the sky?", max_tokens=24)
    alone, beside = engine(n_ctx=2048), engine(n_ctx=2048)
    try:
        solo = run(alone, {"long": question})["long"][0]
        others = {f"q{i}": chat(q, max_tokens=24) for i, q in enumerate(QUESTIONS[:3])}
        assert run(beside, {"long": question, **others})["long"][0] == solo
    finally:
        alone.close()
        beside.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_a_long_reused_prefix_answers_as_a_cold_run(threads):
    """With flash attention on (the default), a reused prefix of 800 tokens still changes nothing."""
    first = chat(LONG + " Which colour was the grass?", max_tokens=24)
    second = chat(LONG + " Which colour was the sky?", max_tokens=24)
    warm, cold = engine(n_ctx=2048, threads=threads), engine(n_ctx=2048, threads=threads)
    try:
        run(warm, {"a": first})
        reused = run(warm, {"b": second})["b"]
        assert reused[1].cached_tokens > 700
        assert reused[0] == run(cold, {"b": second})["b"][0]
    finally:
        warm.close()
        cold.close()
