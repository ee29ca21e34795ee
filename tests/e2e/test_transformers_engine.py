"""The transformers engine in this process: cancellation leaves the batch at once."""

from __future__ import annotations

import pytest

from warmserve.config import ModelSpec
from warmserve.generation import ChatMessage, GenerationRequest, SamplingParams, Started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def engine(hf_cache_dir):
    from warmserve.backends.hf.engine import TransformersEngine

    return TransformersEngine(ModelSpec(backend="transformers", threads=1, cache_dir=str(hf_cache_dir)), 0)


def chat(question: str, max_tokens: int = 12) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", question),),
        sampling=SamplingParams(temperature=0, max_tokens=max_tokens),
    )


def drain(engine, events: list) -> None:
    while engine.running:
        events.extend(engine.step())


def test_a_cancelled_sequence_leaves_the_batch_and_the_others_are_unchanged(engine):
    keeper = chat("What is 2+2?")
    alone: list = []
    engine.add("kept", keeper)
    drain(engine, alone)

    assert isinstance(engine.add("gone", chat("Who wrote Hamlet?", 200)), Started)
    engine.add("kept", keeper)
    together = []
    for _ in range(3):
        together.extend(engine.step())
    assert engine.running == 2
    engine.cancel("gone")
    assert engine.running == 1
    after_cancel: list = []
    drain(engine, after_cancel)
    assert {request_id for request_id, _ in after_cancel} == {"kept"}
    kept = [event for request_id, event in together + after_cancel if request_id == "kept"]
    assert kept == [event for _, event in alone]


def test_a_generative_model_embeds_like_llama_cpp_with_the_same_weights(engine):
    """Mean-pooled last hidden states; the weights are the GGUF's, dequantized, so close to llama.cpp's."""
    import llama_cpp
    import numpy as np

    from warmserve.config import embedded_model_path
    from warmserve.embedding import EmbedRequest, unpack_vector

    texts = ("The cat sat on the mat.", "Quarterly revenue rose by ten percent.")
    ours = np.array([unpack_vector(v) for v in engine.embed(EmbedRequest(texts)).vectors])
    llama = llama_cpp.Llama(
        model_path=str(embedded_model_path()), embedding=True, pooling_type=1, n_threads=1, verbose=False
    )
    expected = np.array(llama.embed(list(texts), normalize=True))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * expected).sum(axis=1).min() > 0.99
