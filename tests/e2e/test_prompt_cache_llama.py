"""The host-memory prompt cache on the real SmolLM2 model: restored prefixes answer as cold runs."""

from __future__ import annotations

import pytest

from tests.e2e.test_llama_batching import LONG, QUESTIONS, chat, run, system_chat
from warmserve.config import ModelSpec
from warmserve.generation import Finished, GenerationRequest, TextDelta

pytestmark = pytest.mark.e2e
SYSTEM = "You are a patient teacher. Answer in one short sentence, then stop. " * 3
OTHER = "You are a pirate. Answer every question like a pirate would, briefly. " * 3


def engine(**spec):
    from warmserve.backends.llama.engine import LlamaCppEngine

    return LlamaCppEngine(ModelSpec(**{"threads": 1, "n_ctx": 512, "slots": 2, "prompt_cache_mib": 64, **spec}))


def cold(request: GenerationRequest, **spec) -> str:
    eng = engine(prompt_cache_mib=0, **spec)
    try:
        text, finish = run(eng, {"cold": request})["cold"]
        assert finish.cached_tokens == 0
        return text
    finally:
        eng.close()


def test_a_prefix_whose_slot_was_taken_is_restored_into_another_slot_and_answers_as_a_cold_run():
    eng = engine()
    try:
        run(eng, {"a": system_chat(SYSTEM, QUESTIONS[0])})  # slot 0
        run(eng, {"b": system_chat(OTHER, QUESTIONS[1]), "c": chat(QUESTIONS[2])})  # b takes slot 0: a is saved
        assert [slot.request_id for slot in eng._slots] == [None, None]
        eng.add("d", system_chat(OTHER, QUESTIONS[3]))  # slot 0 (b's prefix)
        second = system_chat(SYSTEM, QUESTIONS[3])
        eng.add("a2", second)
        assert next(slot.sequence for slot in eng._slots if slot.request_id == "a2") == 1  # not slot 0, a's
        texts: dict[str, str] = {}
        finished: dict[str, Finished] = {}
        while eng.running:
            for request_id, event in eng.step():
                if isinstance(event, TextDelta):
                    texts[request_id] = texts.get(request_id, "") + event.text
                elif isinstance(event, Finished):
                    finished[request_id] = event
        stats = eng.prompt_cache_stats()
        assert stats is not None
        assert stats.hits == 1
        assert stats.restored_tokens > 40
        assert finished["a2"].cached_tokens > 40  # the system prompt's tokens
        assert texts["a2"] == cold(second)
    finally:
        eng.close()


def test_a_prefix_another_running_request_holds_is_copied_into_a_new_slot_and_answers_as_a_cold_run():
    eng = engine()
    try:
        eng.add("a", system_chat(SYSTEM, QUESTIONS[0]))
        while not any(slot.next_token is not None for slot in eng._slots):  # a's prompt is computed
            eng.step()
        second = system_chat(SYSTEM, QUESTIONS[3])
        text, finish = run(eng, {"b": second})["b"]  # slot 1, while a still runs in slot 0
        assert finish.cached_tokens > 40
        stats = eng.prompt_cache_stats()
        assert stats is not None
        assert stats.hits == 1
        assert text == cold(second)
    finally:
        eng.close()


def test_the_next_turn_of_a_conversation_pushed_out_of_its_slot_is_restored_and_answers_as_a_cold_run():
    eng = engine(slots=1)
    try:
        first_answer, first = run(eng, {"t1": chat(QUESTIONS[0])})["t1"]
        run(eng, {"other": chat(QUESTIONS[2])})  # takes the only slot
        second = chat(QUESTIONS[0], first_answer, "And three more?")
        text, finish = run(eng, {"t2": second})["t2"]
        assert finish.cached_tokens > first.prompt_tokens  # the question and the answer came back
        assert text == cold(second, slots=1)
    finally:
        eng.close()


def test_a_long_prefix_cut_out_of_a_longer_saved_sequence_answers_as_a_cold_run():
    """800 tokens restored from a saved sequence that goes on past them (cut there), flash attention on."""
    first = chat(LONG + " Which colour was the grass?", max_tokens=24)
    second = chat(LONG + " Which colour was the sky?", max_tokens=24)
    eng = engine(n_ctx=2048, slots=1)
    try:
        run(eng, {"a": first})
        run(eng, {"x": chat(QUESTIONS[1])})
        text, finish = run(eng, {"b": second})["b"]
        assert finish.cached_tokens > 700
        assert text == cold(second, n_ctx=2048, slots=1)
    finally:
        eng.close()


def test_a_zero_budget_turns_the_cache_off():
    eng = engine(slots=1, prompt_cache_mib=0)
    try:
        run(eng, {"a": system_chat(SYSTEM, QUESTIONS[0])})
        run(eng, {"b": chat(QUESTIONS[1])})
        assert run(eng, {"c": system_chat(SYSTEM, QUESTIONS[3])})["c"][1].cached_tokens < 10  # the template's start
        assert eng.prompt_cache_stats() is None
    finally:
        eng.close()


def test_a_tiny_budget_evicts_the_oldest_state_and_holds_no_more_than_it():
    eng = engine(slots=1, prompt_cache_mib=3)  # one ~100-token sequence of SmolLM2 (23 KB a token), not two
    try:
        for i, system in enumerate([SYSTEM, OTHER, SYSTEM[::-1]]):
            run(eng, {f"r{i}": system_chat(system, QUESTIONS[i])})
        stats = eng.prompt_cache_stats()
        assert stats is not None
        assert stats.entries == 1
        assert stats.evictions == 1
        assert 0 < stats.bytes <= stats.budget_bytes == 3 << 20
        # the newest saved state (OTHER's) is the one left
        assert run(eng, {"again": system_chat(OTHER, QUESTIONS[0])})["again"][1].cached_tokens > 40
    finally:
        eng.close()


def test_a_server_reports_restored_tokens_as_cached_tokens_and_its_cache_in_metrics(tmp_path):
    import httpx
    import openai

    from tests.conftest import start_server

    server = start_server(["--workers", "1", "--slots", "1", "--n-ctx", "512", "--prompt-cache-mib", "64"], tmp_path)
    try:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none")

        def ask(system: str, question: str) -> int:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
            answer = client.chat.completions.create(model="smollm2-135m-instruct", messages=messages, max_tokens=4)
            details = answer.usage.prompt_tokens_details if answer.usage is not None else None
            return details.cached_tokens or 0 if details is not None else 0

        ask(SYSTEM, QUESTIONS[0])
        ask(OTHER, QUESTIONS[1])  # takes the only slot: the first conversation is saved
        assert ask(SYSTEM, QUESTIONS[3]) > 40
        lines = httpx.get(f"{server.base_url}/metrics").text.splitlines()
        cache_lines = [line.split() for line in lines if line.startswith("warmserve_prompt_cache")]
        values = {name: float(value) for name, value in cache_lines}
        model = 'model="smollm2-135m-instruct"'
        assert values[f"warmserve_prompt_cache_hits_total{{{model}}}"] == 1
        assert values[f"warmserve_prompt_cache_restored_tokens_total{{{model}}}"] > 40
        assert values[f"warmserve_prompt_cache_misses_total{{{model}}}"] == 2
        assert 0 < values[f'warmserve_prompt_cache_bytes{{{model},worker="0"}}'] <= 64 << 20
        assert values[f'warmserve_prompt_cache_budget_bytes{{{model},worker="0"}}'] == 64 << 20
    finally:
        server.stop()
