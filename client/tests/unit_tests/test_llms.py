import pytest
from langchain_core.exceptions import ContextOverflowError, ModelNotFoundError
from pydantic import ValidationError

from langchain_warmserve import WarmServeLLM
from tests.unit_tests import wire
from tests.unit_tests.conftest import BASE_URL, MODEL, error_answer


def llm(recorder, **kwargs) -> WarmServeLLM:
    return WarmServeLLM(base_url=BASE_URL, max_retries=0, **recorder.clients(), **kwargs)


def test_defaults_are_the_local_server_and_its_default_model(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-a-real-openai-key")
    model = WarmServeLLM()
    assert model.model_name == MODEL
    assert str(model.root_client.base_url) == "http://127.0.0.1:8000/v1/"
    assert model.root_client.api_key != "sk-a-real-openai-key"


def test_environment_names_the_server_and_its_key(monkeypatch):
    monkeypatch.setenv("WARMSERVE_BASE_URL", "http://gpu-box:9000/v1")
    monkeypatch.setenv("WARMSERVE_API_KEY", "local-key")
    model = WarmServeLLM()
    assert str(model.root_async_client.base_url) == "http://gpu-box:9000/v1/"
    assert model.root_client.api_key == "local-key"


def test_default_requests_carry_only_parameters_the_server_accepts(recorder):
    model = llm(recorder)
    assert model.invoke("Roses are") == " answer 0"
    assert "".join(model.stream("Roses are")) == " red"
    plain, streamed = recorder.bodies
    assert wire.rejected(plain, wire.CompletionRequest) == []
    assert wire.rejected(streamed, wire.CompletionRequest) == []
    assert plain["model"] == MODEL
    assert plain["max_tokens"] == 256
    assert "n" not in plain
    assert None not in plain.values()


def test_sampling_parameters_and_default_stop_are_sent(recorder):
    model = llm(
        recorder, temperature=0, max_tokens=5, top_p=0.5, seed=3, stop=["\n"], model_kwargs={"user": "u"}
    )
    model.invoke("Q")
    model.invoke("Q", stop=["."])
    first, second = recorder.bodies
    assert (first["temperature"], first["max_tokens"], first["top_p"], first["seed"]) == (0, 5, 0.5, 3)
    assert (first["stop"], first["user"]) == (["\n"], "u")
    assert second["stop"] == ["."]  # a call's stop replaces the default


def test_a_batch_is_one_request_with_every_prompt(recorder):
    assert llm(recorder).batch(["a", "b", "c"]) == [" answer 0", " answer 1", " answer 2"]
    [body] = recorder.bodies
    assert body["prompt"] == ["a", "b", "c"]


def test_generate_reports_usage_and_finish_reason(recorder):
    result = llm(recorder).generate(["a"])
    assert result.llm_output is not None
    assert result.llm_output["token_usage"]["total_tokens"] == 9
    assert result.llm_output["model_name"] == MODEL
    assert result.generations[0][0].generation_info == {"finish_reason": "length", "logprobs": None}


def test_fill_the_context_max_tokens_is_refused_up_front():
    with pytest.raises(ValidationError, match="max_tokens"):
        WarmServeLLM(max_tokens=-1)


def test_tracing_names_warmserve():
    params = WarmServeLLM()._get_ls_params()
    assert (params["ls_provider"], params["ls_model_name"]) == ("warmserve", MODEL)


def test_token_ids_are_not_guessed_with_an_openai_tokenizer():
    with pytest.raises(NotImplementedError, match="get_num_tokens"):
        WarmServeLLM().get_token_ids("hello")


def test_server_errors_become_langchain_errors(recorder):
    recorder.answer = error_answer(404, "model_not_found", "The model 'x' does not exist.")
    model = llm(recorder)
    with pytest.raises(
        ModelNotFoundError, match=r"The model 'x' does not exist\. \(HTTP 404, model_not_found\)"
    ):
        model.invoke("Q")
    with pytest.raises(ModelNotFoundError):
        list(model.stream("Q"))
    recorder.answer = error_answer(400, "context_length_exceeded", "Too long.")
    with pytest.raises(ContextOverflowError, match="Too long"):
        model.invoke("Q")


async def test_async_errors_are_typed_the_same_way(recorder):
    recorder.answer = error_answer(400, "context_length_exceeded", "Too long.")
    model = llm(recorder)
    with pytest.raises(ContextOverflowError):
        await model.ainvoke("Q")
    with pytest.raises(ContextOverflowError):
        [chunk async for chunk in model.astream("Q")]


def test_sampling_extensions_are_sent_in_the_body(recorder):
    llm(recorder, top_k=1, repetition_penalty=1.2, dry_multiplier=0.5).invoke("Q")
    [body] = recorder.bodies
    assert (body["top_k"], body["repetition_penalty"], body["dry_multiplier"]) == (1, 1.2, 0.5)
    assert wire.rejected(body, wire.CompletionRequest) == []
