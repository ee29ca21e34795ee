"""get_num_tokens asks the server's tokenizer: POST {base_url}/tokenize, whose contract is
`{"model", "prompt" | "messages"} -> {"model", "count", ...}`. The real server's counts are checked
in test_chat_models.py; here stubs show exactly what the client sends, and play an older server
without the endpoint."""

import pytest
from langchain_core.exceptions import ModelNotFoundError
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_warmserve import ChatWarmServe, TokenizationUnsupportedError, WarmServeLLM
from tests.standard_properties import MODEL
from tests.stub_server import Reply


def test_text_is_counted_by_the_server(stub):
    stub.reply("POST", "/v1/tokenize", Reply(200, {"model": MODEL, "count": 7}))
    assert ChatWarmServe(base_url=stub.base_url).get_num_tokens("Roses are red") == 7
    assert WarmServeLLM(base_url=stub.base_url).get_num_tokens("Roses are red") == 7
    assert [r.body for r in stub.requests] == [{"model": MODEL, "prompt": "Roses are red"}] * 2
    assert stub.requests[0].path == "/v1/tokenize"


def test_messages_are_counted_as_the_chat_request_would_send_them(stub):
    stub.reply("POST", "/v1/tokenize", Reply(200, {"model": "other", "count": 42}))
    model = ChatWarmServe(base_url=stub.base_url, model="other")
    messages = [SystemMessage("Be brief."), HumanMessage("Hi", name="ann"), AIMessage("Hello")]
    assert model.get_num_tokens_from_messages(messages) == 42
    assert stub.requests[0].body == {
        "model": "other",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "ann"},
            {"role": "assistant", "content": "Hello"},
        ],
    }


def test_the_url_follows_the_base_url_and_the_key_is_sent(stub):
    stub.reply("POST", "/proxy/v1/tokenize", Reply(200, {"model": MODEL, "count": 3}))
    base_url = stub.base_url.replace("/v1", "/proxy/v1")
    assert ChatWarmServe(base_url=base_url, api_key="k").get_num_tokens("x") == 3
    assert stub.requests[0].headers["authorization"] == "Bearer k"


def test_a_server_without_tokenize_says_so_and_no_other_tokenizer_is_guessed(stub):
    # The stub answers 404 `not_found` to unknown paths, as warmserve does.
    for model in (ChatWarmServe(base_url=stub.base_url), WarmServeLLM(base_url=stub.base_url)):
        with pytest.raises(TokenizationUnsupportedError, match="does not offer tokenization") as info:
            model.get_num_tokens("hello")
        assert f"{stub.base_url}/tokenize" in str(info.value)
    with pytest.raises(TokenizationUnsupportedError):
        ChatWarmServe(base_url=stub.base_url).get_num_tokens_from_messages([HumanMessage("hello")])


def test_an_unknown_model_is_still_model_not_found(stub):
    body = {"error": {"message": "The model 'x' does not exist.", "type": "invalid_request_error",
                      "param": "model", "code": "model_not_found"}}  # fmt: skip
    stub.reply("POST", "/v1/tokenize", Reply(404, body))
    with pytest.raises(ModelNotFoundError, match="The model 'x' does not exist"):
        ChatWarmServe(base_url=stub.base_url, model="x").get_num_tokens("hello")


def test_a_malformed_answer_is_an_error(stub):
    stub.reply("POST", "/v1/tokenize", Reply(200, {"model": MODEL, "tokens": [1, 2]}))
    with pytest.raises(ValueError, match="Unexpected answer"):
        ChatWarmServe(base_url=stub.base_url).get_num_tokens("hello")
