"""End to end: `warmserve serve` with the real SmolLM2 GGUF, driven by the official openai client."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import llama_cpp
import openai
import pytest

from tests.conftest import ServerProcess, start_server
from warmserve.config import EMBEDDED_MODEL_NAME, embedded_model_path

pytestmark = pytest.mark.e2e
MODEL = EMBEDDED_MODEL_NAME
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
PROMPT = "The three primary colours are"


@pytest.fixture(scope="module")
def server(smollm_server: ServerProcess) -> ServerProcess:
    return smollm_server


@pytest.fixture(scope="module")
def local_llama() -> llama_cpp.Llama:
    """The same weights in this process, as a user would run them without a server.

    Flash attention on, as the server has it, so greedy decoding follows the same arithmetic
    (these prompts are under 64 tokens, so both use llama.cpp's per-row attention kernel).
    """
    return llama_cpp.Llama(
        model_path=str(embedded_model_path()), n_ctx=1024, n_threads=1, flash_attn=True, verbose=False
    )


def test_models_list_shows_the_embedded_model_with_its_workers_ready(client):
    [model] = client.models.list().data
    assert model.id == MODEL
    extra = model.model_extra
    assert (extra["state"], extra["ready_workers"], extra["workers"]) == ("ready", 2, 2)
    assert (extra["backend"], extra["context_length"]) == ("llama_cpp", 1024)
    assert extra["capabilities"]["suffix"] is False  # SmolLM2 has no fill-in-the-middle tokens


def test_completion_logprobs_equal_llama_cpp_python_in_process(client):
    answer = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=8, temperature=0, logprobs=3)
    local = llama_cpp.Llama(
        model_path=str(embedded_model_path()), n_ctx=1024, n_threads=1, flash_attn=True, logits_all=True, verbose=False
    )
    expected = local.create_completion(PROMPT, max_tokens=8, temperature=0, logprobs=3)
    ours, theirs = answer.choices[0].logprobs, expected["choices"][0]["logprobs"]
    assert ours.tokens == theirs["tokens"]
    assert ours.token_logprobs == pytest.approx(theirs["token_logprobs"], abs=1e-3)
    for our_top, their_top in zip(ours.top_logprobs, theirs["top_logprobs"], strict=True):
        assert set(our_top) == set(their_top)
        assert [our_top[t] for t in their_top] == pytest.approx(list(their_top.values()), abs=1e-3)


def test_suffix_on_a_model_without_fill_in_the_middle_tokens_is_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL, prompt="def add(a, b):", suffix="    return c", max_tokens=4)
    assert caught.value.body["param"] == "suffix"


def test_chat_at_temperature_zero_matches_llama_cpp_python_in_process(client, local_llama):
    answer = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=24)
    expected = local_llama.create_chat_completion(messages=QUESTION, temperature=0, max_tokens=24)
    assert answer.choices[0].message.content == expected["choices"][0]["message"]["content"]
    assert answer.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert answer.usage.completion_tokens == expected["usage"]["completion_tokens"]
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert answer.choices[0].finish_reason == expected["choices"][0]["finish_reason"]


def test_completion_usage_counts_the_real_tokens(client, local_llama):
    answer = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=5, temperature=0)
    assert answer.usage.prompt_tokens == len(local_llama.tokenize(PROMPT.encode(), add_bos=True, special=True))
    assert answer.usage.completion_tokens == 5
    assert answer.choices[0].finish_reason == "length"
    expected = local_llama.create_completion(PROMPT, max_tokens=5, temperature=0)
    assert answer.choices[0].text == expected["choices"][0]["text"]


def test_temperature_zero_is_deterministic_across_requests_and_workers(client):
    texts = {
        client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=16)
        .choices[0]
        .message.content
        for _ in range(4)
    }
    assert len(texts) == 1


def test_the_same_seed_gives_the_same_sample(client):
    def sample(seed: int) -> str:
        answer = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12, temperature=1.0, seed=seed)
        return answer.choices[0].text

    assert sample(7) == sample(7)


def test_chat_stream_carries_the_same_text_and_usage_as_the_plain_answer(client):
    plain = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=20)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            temperature=0,
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == plain.choices[0].finish_reason
    streamed = chunks[-1].usage
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (
        plain.usage.prompt_tokens,
        plain.usage.completion_tokens,
    )


def test_completion_stream_matches_the_plain_completion(client):
    plain = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=10, temperature=0)
    chunks = list(client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=10, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == plain.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stop_sequences_cut_the_output(client):
    plain = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0).choices[0].text
    word = plain.split()[1]
    stopped = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0, stop=[word])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].text == plain[: plain.index(word)]


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert info.value.body["code"] == "model_not_found"


def test_prompt_over_the_context_is_400_context_length_exceeded(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=2000)
    assert info.value.body["code"] == "context_length_exceeded"
    assert re.search(r"maximum context length is 1024 tokens.*\b\d+ tokens", info.value.body["message"])


def test_only_worker_processes_load_llama_cpp(server):
    """The API process stays small: llama.cpp's library is mapped in the workers only."""

    def maps(pid: int) -> str:
        return Path(f"/proc/{pid}/maps").read_text()

    tasks = Path(f"/proc/{server.process.pid}/task").iterdir()
    children = [pid for task in tasks for pid in (task / "children").read_text().split()]
    worker_maps = [maps(int(pid)) for pid in children if "libllama" in maps(int(pid))]
    assert len(worker_maps) == 2
    assert "libllama" not in maps(server.process.pid)
    assert "libtorch" not in maps(server.process.pid)


def test_tokenize_matches_the_prompt_tokens_of_a_chat_completion(server, client):
    counted = httpx.post(f"{server.base_url}/v1/tokenize", json={"model": MODEL, "messages": QUESTION}).json()
    answer = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=1)
    assert counted["count"] == answer.usage.prompt_tokens


def metric(server: ServerProcess, line_start: str) -> float:
    for line in httpx.get(f"{server.base_url}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return 0.0


def test_hanging_up_mid_stream_cancels_the_generation_and_frees_the_slot(server, client):
    cancelled = 'warmserve_requests_cancelled_total{model="smollm2-135m-instruct"}'
    before = metric(server, cancelled)
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 900, "temperature": 0, "stream": True}
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for _ in range(2):  # one per worker: both slots taken, then given back
            with http.stream("POST", "/v1/completions", json=body) as stream:
                assert next(line for line in stream.iter_lines() if line.startswith("data: {"))
    for _ in range(100):
        if metric(server, cancelled) == before + 2:
            break
        time.sleep(0.05)
    assert metric(server, cancelled) == before + 2
    assert metric(server, 'warmserve_requests_running{model="smollm2-135m-instruct"}') == 0
    answer = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=3, temperature=0)
    assert answer.usage.completion_tokens == 3


def test_a_cancelled_llama_cpp_sequence_stops_at_once(local_llama):
    from warmserve.backends.llama.engine import LlamaCppEngine
    from warmserve.config import ModelSpec
    from warmserve.generation import GenerationRequest, SamplingParams, TextDelta

    engine = LlamaCppEngine(ModelSpec(threads=1, n_ctx=512))
    request = GenerationRequest(prompt=PROMPT, sampling=SamplingParams(temperature=0, max_tokens=400))
    engine.add("long", request)
    assert any(isinstance(e, TextDelta) for _ in range(3) for _, e in engine.step())
    engine.cancel("long")
    assert engine.running == 0
    assert engine.step() == []
    engine.add("next", GenerationRequest(prompt=PROMPT, sampling=SamplingParams(temperature=0, max_tokens=2)))
    events = [event for _ in range(3) for _, event in engine.step()]
    assert events[-1].completion_tokens == 2
    engine.close()


def test_a_repeated_prompt_reports_its_reused_prefix_as_cached_tokens(server, client):
    counter = 'warmserve_prompt_tokens_cached_total{model="smollm2-135m-instruct"}'
    before = metric(server, counter)
    ask = {"model": MODEL, "messages": QUESTION, "temperature": 0, "max_tokens": 4}
    first = client.chat.completions.create(**ask)
    again = client.chat.completions.create(**ask)
    cached = [a.usage.prompt_tokens_details.cached_tokens for a in (first, again)]
    # Two workers: the repeat may land on the other one, but a worker that saw the prompt reuses it.
    assert max(cached) >= first.usage.prompt_tokens - 1
    assert again.choices[0].message.content == first.choices[0].message.content
    assert metric(server, counter) >= before + max(cached)


def test_n_choices_are_batched_and_each_seeded_choice_repeats_alone(client):
    ask = {"model": MODEL, "messages": QUESTION, "max_tokens": 12, "temperature": 0.9}
    together = client.chat.completions.create(**ask, n=3, seed=5)
    assert [c.index for c in together.choices] == [0, 1, 2]
    for i, choice in enumerate(together.choices):
        alone = client.chat.completions.create(**ask, seed=5 + i)
        assert choice.message.content == alone.choices[0].message.content


def test_a_worker_killed_mid_stream_loses_no_text_and_is_replaced(server, client):
    """Runs last in this module: it kills one of the two llama.cpp workers; the stream it held
    resumes on the other one and ends as the undisturbed stream beside it does."""
    import os
    import signal

    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 600, "temperature": 0, "stream": True}
    tasks = Path(f"/proc/{server.process.pid}/task").iterdir()
    workers = [int(pid) for task in tasks for pid in (task / "children").read_text().split()]
    workers = [pid for pid in workers if "libllama" in Path(f"/proc/{pid}/maps").read_text()]
    assert len(workers) == 2
    with (
        httpx.Client(base_url=server.base_url, timeout=120) as http,
        http.stream("POST", "/v1/completions", json=body) as first,
        http.stream("POST", "/v1/completions", json=body) as second,
    ):
        streams = [first.iter_lines(), second.iter_lines()]
        texts = []
        for lines in streams:  # both running, one on each worker (least-loaded dispatch)
            line = next(line for line in lines if line.startswith("data: {"))
            texts.append(json.loads(line[6:])["choices"][0]["text"])
        os.kill(workers[0], signal.SIGKILL)
        endings = []
        for i, lines in enumerate(streams):
            data = [line for line in lines if line.startswith("data: ")]
            endings.append(data[-1])
            texts[i] += "".join(json.loads(line[6:])["choices"][0]["text"] for line in data[:-1])
    assert endings == ["data: [DONE]", "data: [DONE]"]
    assert texts[0] == texts[1]
    for _ in range(600):
        if httpx.get(f"{server.base_url}/ready").json()["status"] == "ready":
            break
        time.sleep(0.1)
    assert httpx.get(f"{server.base_url}/v1/models").json()["data"][0]["ready_workers"] == 2
    assert client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=3).usage.completion_tokens == 3


def test_a_lone_request_on_borrowed_cores_answers_as_llama_cpp_python(tmp_path, local_llama):
    """Core lending (on by default): two 1-thread workers, and the only busy one computes its prompt
    on both cores once the other has been idle for a while."""
    topics = ["the sea", "a lighthouse", "the moon", "a red fox"]
    questions = [[{"role": "user", "content": f"Write one sentence about {topic}."}] for topic in topics]
    server = start_server(["--workers", "2", "--n-ctx", "1024", "--log-level", "debug"], tmp_path)
    log = tmp_path / "server.log"
    try:
        client = server.openai_client()
        answers: list[tuple[int, str | None]] = []
        # Lending waits for the other worker to be idle a while, and for the machine to have the core
        # idle: a few different prompts, one after another, give it the chance.
        while len(answers) < 4 or ("threads -> 2" not in log.read_text() and len(answers) < 12):
            number = len(answers) % len(questions)
            answer = client.chat.completions.create(
                model=MODEL, messages=questions[number], temperature=0, max_tokens=24
            )
            answers.append((number, answer.choices[0].message.content))
    finally:
        server.stop()
    expected = [
        local_llama.create_chat_completion(messages=q, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
        for q in questions
    ]
    assert [text for _, text in answers] == [expected[number] for number, _ in answers]
    assert "threads -> 2" in log.read_text()  # a lone request did borrow a core
