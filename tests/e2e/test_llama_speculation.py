"""Prompt-lookup speculative decoding on the real SmolLM2: the same output as plain decoding, faster.

Every test runs a request with and without speculation and asks for the same text, finish and
logprobs, and that drafts were made and accepted (so a drafter that never drafts cannot pass).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_engine_resume import recorded, resume, run, shown
from tests.e2e.thinking_model import BUDGETS, thinking_spec
from warmserve.api.grammar import schema_grammar
from warmserve.backends.llama.engine import LlamaCppEngine
from warmserve.config import ModelSpec
from warmserve.generation import (
    ChatMessage,
    Drawn,
    Finished,
    GenerationEvent,
    GenerationRequest,
    ReasoningRequest,
    SamplingParams,
    Speculation,
    TextDelta,
)

pytestmark = pytest.mark.e2e

PASSAGE = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk. He trimmed the wick, polished "
    "the great lens until it shone, and wound the clockwork that turned the beam across the water. Ships "
    "passing the rocky point at night looked for the light, counted its flashes, and knew where they were. "
    "In winter the storms came from the north, and waves broke over the lower gallery, but the lamp never "
    "went out. When the keeper retired, the village gave him a brass telescope, and he watched the new "
    "automatic light from his cottage on the hill."
)
QUOTE = f"{PASSAGE}\n\nRepeat the text above exactly."
ON = Speculation(draft_tokens=8, ngram_min=2, ngram_max=4)  # short n-grams: many drafts, some missing
OFF = Speculation(draft_tokens=0)


def spec(**fields: object) -> ModelSpec:
    # Draft in every step, however many sequences decode and however few drafts land.
    options = {"max_batch": 0, "min_acceptance": 0.0}
    return ModelSpec(**{"threads": 1, "n_ctx": 1024, "slots": 3, "speculative": options, **fields})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    eng = LlamaCppEngine(spec())
    yield eng
    eng.close()


def ask(question: str = QUOTE, speculative: Speculation | None = ON, **sampling: object) -> GenerationRequest:
    params = SamplingParams(**{"temperature": 0.0, "max_tokens": 60, **sampling})  # type: ignore[arg-type]
    return GenerationRequest(messages=(ChatMessage("user", question),), sampling=params, speculative=speculative)


def outcome(events: list[GenerationEvent]) -> tuple[str, tuple, str, int]:
    finished = events[-1]
    assert isinstance(finished, Finished)
    text, logprobs = shown(events)
    return text, logprobs, finished.finish_reason, finished.completion_tokens


def both(engine: LlamaCppEngine, request: GenerationRequest) -> tuple[list[GenerationEvent], list[GenerationEvent]]:
    """The request run plainly, then speculating; the speculating run made drafts and some landed."""
    plain = run(engine, replace(request, speculative=OFF))
    fast = run(engine, request)
    done = fast[-1]
    assert isinstance(done, Finished)
    assert done.drafted_tokens > 0
    assert 0 < done.accepted_tokens <= done.drafted_tokens
    assert isinstance(plain[-1], Finished)
    assert plain[-1].drafted_tokens == 0
    return plain, fast


def test_verify_rows_give_the_logits_of_one_token_decodes_bitwise(engine):
    """The condition speculation's exactness rests on (CPU flash attention, at most 63 rows of a sequence)."""
    model, batch = engine._native, engine._batch
    tokens = model.vocab.tokenize(PASSAGE, True)
    prompt, follow = tokens[:-13], tokens[-13:]
    for sequence in (0, 1):
        model.forget(sequence)
        for start in range(0, len(prompt), 63):
            batch.clear()
            for offset, token in enumerate(prompt[start : start + 63]):
                batch.add(token, start + offset, sequence, logits=False)
            model.decode(batch)
    one_by_one = []
    for offset, token in enumerate(follow):
        batch.clear()
        batch.add(token, len(prompt) + offset, 0, logits=True)
        model.decode(batch)
        one_by_one.append(model.logits(0).copy())
    batch.clear()
    neighbour = batch.add(prompt[0], len(prompt), 2, logits=True)  # another sequence decodes in the same step
    rows = [batch.add(token, len(prompt) + offset, 1, logits=True) for offset, token in enumerate(follow)]
    model.decode(batch)
    assert neighbour == 0
    assert all(np.array_equal(model.logits(row), expected) for row, expected in zip(rows, one_by_one, strict=True))
    for sequence in (0, 1, 2):
        model.forget(sequence)
        engine._slots[sequence].cached = []


def test_a_quote_decoded_greedily_is_plain_decodings_and_most_drafts_land(engine):
    plain, fast = both(engine, ask(max_tokens=80))
    assert outcome(fast) == outcome(plain)
    done = fast[-1]
    assert isinstance(done, Finished)
    assert done.accepted_tokens >= done.completion_tokens // 3  # the quote is copied: a third saved at least


def test_a_seeded_sample_with_penalties_bias_and_truncation_draws_the_same_tokens(engine):
    sampling = {
        "temperature": 0.7,
        "seed": 2,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.02,
        "repetition_penalty": 1.05,
        "presence_penalty": 0.2,
        "frequency_penalty": 0.1,
        "logit_bias": ((28, -5.0), (30, 2.0)),
    }
    plain, fast = both(engine, ask(**sampling))
    assert [e for e in fast if isinstance(e, Drawn)] == [e for e in plain if isinstance(e, Drawn)]
    assert outcome(fast) == outcome(plain)


def test_logprobs_a_stop_string_and_the_token_limit_are_plain_decodings(engine):
    plain_text = outcome(run(engine, ask(speculative=OFF, max_tokens=80)))[0]
    stop = plain_text.split()[30]  # a word well inside the quote
    for sampling in ({"stop": (stop,)}, {"max_tokens": 37}, {"logprobs": 3}):
        plain, fast = both(engine, ask(**{"max_tokens": 80, **sampling}))  # type: ignore[arg-type]
        assert outcome(fast) == outcome(plain), sampling
    assert outcome(fast)[1]  # the last run's logprobs were there to compare


def test_a_json_schema_constrains_each_verify_row_as_it_would_a_plain_step(engine):
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    constraint = schema_grammar(schema, "response_format")
    question = f"{PASSAGE}\n\nAnswer in JSON with the key text holding the text above."
    plain, fast = both(engine, replace(ask(question, max_tokens=80), constraint=constraint))
    assert outcome(fast) == outcome(plain)
    json.loads(outcome(fast)[0] + ('"}' if outcome(fast)[2] == "length" else ""))  # valid as far as it went


def test_a_speculating_sequence_leaves_its_batch_neighbours_their_solo_answers(engine):
    requests = {"quote": ask(max_tokens=50), "a": ask("What is 2+2?", OFF, max_tokens=30)}
    requests["b"] = ask("Name three colours.", OFF, max_tokens=30)
    solo = {name: outcome(run(engine, request))[0] for name, request in requests.items()}
    for name, request in requests.items():
        engine.add(name, request)
    texts = dict.fromkeys(requests, "")
    finished: dict[str, Finished] = {}
    while engine.running:
        for name, event in engine.step():
            if isinstance(event, TextDelta):
                texts[name] += event.text
            elif isinstance(event, Finished):
                finished[name] = event
    assert texts == solo
    assert finished["quote"].accepted_tokens > 0


def test_a_request_cut_mid_quote_resumes_to_the_same_answer(engine):
    whole = run(engine, ask(max_tokens=60))
    drawn = [i for i, event in enumerate(whole) if isinstance(event, Drawn)]
    cut = drawn[len(drawn) // 2]
    resumed = resume(engine, ask(max_tokens=60), whole[: cut + 1])
    assert recorded(whole[: cut + 1]).tokens  # it was cut after some tokens
    assert shown(whole[: cut + 1])[0] + shown(resumed)[0] == shown(whole)[0]
    assert outcome(resumed)[2:] == outcome(whole)[2:]


def test_a_thinking_budget_closes_the_block_where_plain_decoding_does(tmp_path: Path):
    eng = LlamaCppEngine(spec(**thinking_spec(tmp_path)))
    try:
        request = replace(ask(max_tokens=60), reasoning=ReasoningRequest(BUDGETS["minimal"], "minimal"))
        plain, fast = both(eng, request)
        assert outcome(fast) == outcome(plain)
        assert isinstance(fast[-1], Finished)
        assert BUDGETS["minimal"] < fast[-1].reasoning_tokens <= BUDGETS["minimal"] + 6  # the budget, the close
    finally:
        eng.close()


def test_by_default_a_lone_request_drafts_a_long_quote():
    eng = LlamaCppEngine(ModelSpec(threads=1, n_ctx=1024, slots=2))  # the model's default policy, unchanged
    try:
        plain = run(eng, ask(speculative=OFF, max_tokens=80))
        fast = run(eng, ask(speculative=None, max_tokens=80))
        assert outcome(fast) == outcome(plain)
        assert isinstance(fast[-1], Finished)
        assert fast[-1].accepted_tokens > 0
    finally:
        eng.close()


def test_a_larger_step_than_max_batch_decodes_plainly():
    eng = LlamaCppEngine(spec(speculative={"max_batch": 1}))
    try:
        eng.add("one", ask(max_tokens=30))
        eng.add("two", ask(max_tokens=30))
        finished = [event for _ in range(100) if eng.running for _, event in eng.step() if isinstance(event, Finished)]
        assert [event.drafted_tokens for event in finished] == [0, 0]
    finally:
        eng.close()


def test_without_flash_attention_a_cpu_engine_does_not_speculate():
    """There verify rows round differently from one-token decodes, so the answer would change."""
    eng = LlamaCppEngine(spec(flash_attn="off"))
    try:
        done = run(eng, ask(max_tokens=20))[-1]
        assert isinstance(done, Finished)
        assert done.drafted_tokens == 0
    finally:
        eng.close()
