"""Both real engines continue a request from where another worker's run of it was cut.

A request is run whole, then cut after any of its events (between a token's `Drawn` and its
text, or after the text), and resumed on a cold slot from what the pool would have recorded up
to the cut: the text and logprobs before the cut plus the resumed run's equal the whole run's,
and so does the finish. Stop strings, logprobs and a JSON schema ride along; a seeded sample
continues the same way every time it is cut at the same token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from warmserve.api.grammar import schema_grammar
from warmserve.backends.base import Engine
from warmserve.config import ModelSpec
from warmserve.generation import (
    ChatMessage,
    Continuation,
    Drawn,
    Finished,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
    TextDelta,
)

pytestmark = pytest.mark.e2e
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


@pytest.fixture(scope="module", params=["llama_cpp", "transformers"])
def engine(request: pytest.FixtureRequest, hf_cache_dir) -> Iterator[Engine]:
    if request.param == "llama_cpp":
        from warmserve.backends.llama.engine import LlamaCppEngine

        eng: Engine = LlamaCppEngine(ModelSpec(threads=1, n_ctx=512, slots=1))
    else:
        from warmserve.backends.hf.engine import TransformersEngine

        eng = TransformersEngine(ModelSpec(backend="transformers", threads=1, cache_dir=str(hf_cache_dir)), 0)
    yield eng
    eng.close()


def chat(question: str, **sampling: object) -> GenerationRequest:
    return GenerationRequest(messages=(ChatMessage("user", question),), sampling=SamplingParams(**sampling))


def run(engine: Engine, request: GenerationRequest) -> list[GenerationEvent]:
    """One request alone, to its end: every event, Drawn ones included."""
    events: list[GenerationEvent] = [engine.add("r", request)]
    while engine.running:
        events += [event for _, event in engine.step()]
    assert isinstance(events[-1], Finished)
    return events


def recorded(events: list[GenerationEvent]) -> Continuation:
    """What the pool's Progress holds after seeing `events`."""
    drawn = [e for e in events if isinstance(e, Drawn)]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    return Continuation(
        tokens=tuple(d.token for d in drawn),
        logprobs=tuple(d.logprob for d in drawn if d.logprob is not None),
        shown_chars=sum(len(d.text) for d in deltas),
        shown_logprobs=sum(len(d.logprobs) for d in deltas),
    )


def shown(events: list[GenerationEvent]) -> tuple[str, tuple]:
    deltas = [e for e in events if isinstance(e, TextDelta)]
    return "".join(d.text for d in deltas), tuple(lp for d in deltas for lp in d.logprobs)


def resume(engine: Engine, request: GenerationRequest, before: list[GenerationEvent], seed: int | None = None):
    """Clear the slot's cache with another request, so the resumed one prefills cold, then resume."""
    run(engine, chat("Hi", temperature=0, max_tokens=2))
    resumed = recorded(before)
    resumed = Continuation(resumed.tokens, resumed.logprobs, resumed.shown_chars, resumed.shown_logprobs, seed)
    from dataclasses import replace

    return run(engine, replace(request, resume=resumed))


def same_logprobs(got: tuple, expected: tuple) -> bool:
    """The same tokens and alternatives; values equal up to float noise (torch computes a resumed
    request's earlier positions in one prefill, not token by token: its sums round differently)."""
    if [(lp.token, [t for t, _ in lp.top]) for lp in got] != [(lp.token, [t for t, _ in lp.top]) for lp in expected]:
        return False
    values = [(lp.logprob, *(v for _, v in lp.top)) for lp in got]
    wanted = [(lp.logprob, *(v for _, v in lp.top)) for lp in expected]
    return all(v == pytest.approx(w, abs=1e-3) for v, w in zip(values, wanted, strict=True))


REQUESTS = {
    "stop strings and logprobs": chat(
        "Write a short poem about the sea.", temperature=0, max_tokens=40, logprobs=2, stop=("waves crash",)
    ),
    "a JSON schema": GenerationRequest(
        messages=(ChatMessage("user", "Give a city and its population as JSON."),),
        sampling=SamplingParams(temperature=0, max_tokens=40),
        constraint=schema_grammar(SCHEMA, "response_format"),
    ),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_a_request_cut_after_any_event_resumes_to_the_undisturbed_answer(engine, name):
    request = REQUESTS[name]
    whole = run(engine, request)
    drawn_at = [i for i, e in enumerate(whole) if isinstance(e, Drawn)]
    assert len(drawn_at) > 10
    # right after a token is announced (its text not yet out), after its text, and later on
    for cut in (drawn_at[1] + 1, drawn_at[2], drawn_at[9] + 1, drawn_at[-1] + 1):
        before, after = whole[:cut], resume(engine, request, whole[:cut])
        (text, logprobs), (whole_text, whole_logprobs) = shown([*before, *after]), shown(whole)
        assert text == whole_text, (name, cut)
        assert same_logprobs(logprobs, whole_logprobs), (name, cut)
        end, resumed_end = whole[-1], after[-1]
        assert isinstance(end, Finished)
        assert isinstance(resumed_end, Finished)
        assert (resumed_end.finish_reason, resumed_end.prompt_tokens, resumed_end.completion_tokens) == (
            end.finish_reason,
            end.prompt_tokens,
            end.completion_tokens,
        )
    if name == "a JSON schema":
        assert set(json.loads(shown(whole)[0])) == {"city", "population"}


def test_a_seeded_sample_cut_at_the_same_token_always_continues_the_same_way(engine):
    request = chat("Tell me a story about a fox.", temperature=0.9, max_tokens=30, seed=11)
    whole = run(engine, request)
    cut = [i for i, e in enumerate(whole) if isinstance(e, Drawn)][6]
    before = whole[:cut]
    seed = Continuation.seed_after(11, 6)
    first, second = resume(engine, request, before, seed), resume(engine, request, before, seed)
    assert shown(first) == shown(second)
    assert shown([*before, *first])[0].startswith(shown(before)[0])
    assert first[-1] == second[-1]
