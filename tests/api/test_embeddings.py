"""/v1/embeddings with the fake engine: OpenAI's shapes, both encodings, and every refusal a 400."""

import base64

import numpy as np
import pytest
from openai.types import CreateEmbeddingResponse

from tests.api.conftest import serve_in_process
from tests.conftest import fake_settings
from warmserve.backends.fake.engine import FAKE_EMBED_SIZE

TEXTS = ["the cat sat on the mat", "the cat sat on a mat", "quarterly revenue rose sharply"]


def vectors(answer) -> np.ndarray:
    return np.array([item.embedding for item in answer.data])


async def test_a_list_of_texts_gets_one_unit_vector_each_in_openai_shape(client):
    raw = await client.post("/v1/embeddings", json={"model": "fake", "input": TEXTS, "encoding_format": "float"})
    assert raw.status_code == 200
    answer = CreateEmbeddingResponse.model_validate(raw.json(), strict=False)
    assert (answer.object, answer.model) == ("list", "fake")
    assert [(item.object, item.index) for item in answer.data] == [("embedding", i) for i in range(3)]
    matrix = vectors(answer)
    assert matrix.shape == (3, FAKE_EMBED_SIZE)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-6)
    similar, unrelated = matrix[0] @ matrix[1], matrix[0] @ matrix[2]
    assert similar > unrelated
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == 6 + 6 + 4


async def test_base64_is_the_float32_bytes_of_the_same_vectors(client):
    body = {"model": "fake", "input": TEXTS}
    floats = (await client.post("/v1/embeddings", json={**body, "encoding_format": "float"})).json()
    packed = (await client.post("/v1/embeddings", json={**body, "encoding_format": "base64"})).json()
    for as_float, as_base64 in zip(floats["data"], packed["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(as_base64["embedding"]), dtype="<f4")
        assert decoded.tolist() == as_float["embedding"]


async def test_the_sdk_default_base64_decodes_to_the_float_answer(sdk):
    default = await sdk.embeddings.create(model="fake", input=TEXTS)  # the SDK asks for base64
    floats = await sdk.embeddings.create(model="fake", input=TEXTS, encoding_format="float")
    assert vectors(default).tolist() == vectors(floats).tolist()


async def test_one_text_token_ids_and_lists_of_token_ids_are_all_accepted(sdk):
    one = await sdk.embeddings.create(model="fake", input="hello world", encoding_format="float")
    assert len(one.data) == 1
    tokens = await sdk.embeddings.create(model="fake", input=[5, 6, 7], encoding_format="float")
    assert (len(tokens.data), tokens.usage.prompt_tokens) == (1, 3)
    lists = await sdk.embeddings.create(model="fake", input=[[5, 6, 7], [8]], encoding_format="float")
    assert vectors(lists)[0].tolist() == vectors(tokens)[0].tolist()
    assert lists.usage.prompt_tokens == 4


async def test_a_batch_equals_its_texts_one_by_one(sdk):
    batch = vectors(await sdk.embeddings.create(model="fake", input=TEXTS, encoding_format="float"))
    for text, row in zip(TEXTS, batch, strict=True):
        alone = vectors(await sdk.embeddings.create(model="fake", input=text, encoding_format="float"))[0]
        assert np.allclose(alone, row, atol=1e-6)


async def test_dimensions_equal_to_the_model_size_is_accepted(client):
    body = {"model": "fake", "input": "a b", "dimensions": FAKE_EMBED_SIZE}
    assert (await client.post("/v1/embeddings", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("body", "param", "phrase"),
    [
        ({"input": ""}, "input", "it is empty"),
        ({"input": []}, "input", "it is empty"),
        ({"input": ["fine", ""]}, "input", "input 1 is empty"),
        ({"input": [[1, 2], []]}, "input", "input 1 is empty"),
        ({"input": [-1]}, "input", "not a text or a token id"),
        ({"input": [1, "a"]}, "input", "mixes int and str"),
        ({"input": "   "}, "input", "empty after tokenization"),
        ({"input": [50_000]}, "input", "outside this model's vocabulary"),
        ({"input": "word " * 300}, "input", "maximum context length"),
        ({"input": "a", "dimensions": 8}, "dimensions", "must be 16"),
        ({"input": "a", "dimensions": 0}, "dimensions", "greater than or equal to 1"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format", "'float' or 'base64'"),
        ({"input": "a", "truncate": True}, "truncate", "not supported"),
        ({"input": "a", "model": "nope"}, "model", "does not exist"),
    ],
)
async def test_bad_requests_are_400s_naming_the_parameter(client, body, param, phrase):
    response = await client.post("/v1/embeddings", json={"model": "fake", **body})
    error = response.json()["error"]
    assert response.status_code == (404 if param == "model" else 400), error
    assert error["param"] == param
    assert phrase in error["message"]
    assert error["type"] == "invalid_request_error"


async def test_context_length_exceeded_has_its_openai_code(client):
    response = await client.post("/v1/embeddings", json={"model": "fake", "input": ["ok", "word " * 300]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert "input 1" in response.json()["error"]["message"]


async def test_each_route_refuses_a_model_that_does_not_do_its_task():
    settings = fake_settings(model={"tasks": ["embed"]})
    async with serve_in_process(settings) as http:
        chat = await http.post(
            "/v1/chat/completions", json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
        )
        completion = await http.post("/v1/completions", json={"model": "fake", "prompt": "hi"})
        for response in (chat, completion):
            assert response.status_code == 400
            assert response.json()["error"]["param"] == "model"
            assert "does not generate" in response.json()["error"]["message"]
        assert (await http.post("/v1/embeddings", json={"model": "fake", "input": "hi"})).status_code == 200
        message = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        refused = await http.post("/v1/messages", json=message)
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "invalid_request_error"  # Anthropic's shape
        capabilities = (await http.get("/v1/models/fake")).json()["capabilities"]
        generation = ("chat", "completions", "messages", "responses", "tools")
        assert [capabilities[name] for name in generation] == [False] * len(generation)
        assert capabilities["embeddings"] is True
    async with serve_in_process(fake_settings(model={"tasks": ["generate"]})) as http:
        response = await http.post("/v1/embeddings", json={"model": "fake", "input": "hi"})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "model"
        assert "does not embed" in response.json()["error"]["message"]


async def test_embedding_tokens_are_counted_in_the_metrics(client):
    await client.post("/v1/embeddings", json={"model": "fake", "input": ["one two", "three"]})
    metrics = (await client.get("/metrics")).text
    assert 'warmserve_prompt_tokens_total{model="fake"} 3.0' in metrics
