"""End to end: /v1/embeddings on the default SmolLM2 GGUF through llama.cpp, with the openai client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import llama_cpp
import numpy as np
import openai
import pytest

from tests.conftest import ServerProcess, start_server
from warmserve.config import EMBEDDED_MODEL_NAME, embedded_model_path

pytestmark = pytest.mark.e2e
MODEL = EMBEDDED_MODEL_NAME
N_BATCH = 64  # small, so that a long input is computed in several pieces
CAT, KITTEN = "The cat sat on the mat.", "A kitten rested on the rug."
REVENUE = "Quarterly revenue rose by ten percent."
LONG = " ".join(f"Sentence {i} of a long document about the history of bridges." for i in range(20))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ["--workers", "1", "--threads", "1", "--n-ctx", "512", "--n-batch", str(N_BATCH)]
    server = start_server(args, tmp_path_factory.mktemp("embed-llama"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def local_llama() -> llama_cpp.Llama:
    """The same weights embedded by llama-cpp-python's own API, mean pooling, whole inputs."""
    return llama_cpp.Llama(
        model_path=str(embedded_model_path()),
        embedding=True,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        n_ctx=512,
        n_batch=512,
        n_ubatch=512,
        n_threads=1,
        verbose=False,
    )


def matrix(answer) -> np.ndarray:
    return np.array([item.embedding for item in answer.data], dtype=np.float64)


def test_similar_texts_are_closer_than_unrelated_ones(client):
    answer = client.embeddings.create(model=MODEL, input=[CAT, KITTEN, REVENUE], encoding_format="float")
    vectors = matrix(answer)
    assert vectors.shape == (3, 576)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    assert answer.model == MODEL
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 3


def test_vectors_match_llama_cpp_pythons_own_embeddings(client, local_llama):
    texts = [CAT, REVENUE, LONG]  # LONG is computed in pieces of N_BATCH tokens
    assert len(local_llama.tokenize(LONG.encode())) > 3 * N_BATCH
    answer = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    expected = np.array(local_llama.embed(texts, normalize=True))
    assert np.abs(matrix(answer) - expected).max() < 2e-3
    assert answer.usage.prompt_tokens == sum(len(local_llama.tokenize(t.encode())) for t in texts)


def test_base64_and_float_encodings_agree(client):
    # The SDK asks for base64 unless told otherwise and decodes it itself.
    as_base64 = client.embeddings.create(model=MODEL, input=[CAT, KITTEN])
    as_float = client.embeddings.create(model=MODEL, input=[CAT, KITTEN], encoding_format="float")
    assert np.array_equal(matrix(as_base64), matrix(as_float))


def test_a_batch_equals_its_texts_embedded_one_by_one(client):
    texts = [CAT, KITTEN, REVENUE, LONG, "hi"]
    batch = matrix(client.embeddings.create(model=MODEL, input=texts, encoding_format="float"))
    alone = np.vstack([matrix(client.embeddings.create(model=MODEL, input=t, encoding_format="float")) for t in texts])
    assert np.abs(batch - alone).max() < 2e-3


def test_token_ids_embed_like_the_text_they_spell(client, local_llama):
    tokens = local_llama.tokenize(CAT.encode())  # with the BOS token, as a text is read
    by_tokens = client.embeddings.create(model=MODEL, input=tokens, encoding_format="float")
    by_text = client.embeddings.create(model=MODEL, input=CAT, encoding_format="float")
    assert np.abs(matrix(by_tokens) - matrix(by_text)).max() < 1e-6


def test_an_input_over_the_context_is_a_400_naming_input(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=[CAT, "word " * 600])
    error = caught.value.body
    assert (error["param"], error["code"]) == ("input", "context_length_exceeded")
    assert "512" in error["message"]


def test_dimensions_other_than_the_models_are_refused(client):
    assert len(client.embeddings.create(model=MODEL, input=CAT, dimensions=576).data[0].embedding) == 576
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=CAT, dimensions=64)
    assert caught.value.body["param"] == "dimensions"


def test_embeddings_are_answered_while_a_long_generation_runs(client):
    """One worker: the embedding is computed between generation steps, not after the generation."""
    finished: list[tuple[float, int]] = []

    def generate() -> None:
        answer = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=200, temperature=0)
        finished.append((time.monotonic(), answer.usage.completion_tokens))

    thread = threading.Thread(target=generate)
    thread.start()
    time.sleep(0.5)  # the generation is under way
    client.embeddings.create(model=MODEL, input=[CAT, KITTEN, REVENUE], encoding_format="float")
    embedded_at = time.monotonic()
    thread.join()
    [(finished_at, generated)] = finished
    assert generated > 100
    assert embedded_at < finished_at


def test_the_same_model_still_chats(client):
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=5, temperature=0
    )
    assert answer.choices[0].message.content
