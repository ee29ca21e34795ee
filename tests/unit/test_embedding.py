"""Embedding helpers: packing work into bounded batches, pooling, unit length, the wire forms."""

import base64
import json

import numpy as np
import pytest

from warmserve.backends.embedding import EmbeddingJobs, EmbedPiece, check_dimensions, normalized
from warmserve.backends.tokens import check_input_tokens
from warmserve.cli import build_parser, settings_from_args
from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, base64_vector, unpack_vector
from warmserve.errors import ContextLengthExceeded, InvalidRequest
from warmserve.generation import Failed
from warmserve.model_folders import is_generative_folder


def token_vectors(pieces: list[EmbedPiece], log: list) -> list[np.ndarray]:
    """A fake model: token t is the vector (t, 1); a piece returns the sum of its tokens' vectors."""
    log.append([(p.tokens, p.start, p.first, p.last) for p in pieces])
    return [np.array([float(sum(p.tokens)), float(len(p.tokens))], dtype=np.float32) for p in pieces]


def run(jobs: EmbeddingJobs, log: list) -> dict:
    answers = {}
    while len(jobs):
        answers.update(jobs.step(lambda pieces: token_vectors(pieces, log)))
    return answers


def test_a_long_input_is_split_into_pieces_and_pooled_like_the_whole():
    jobs, log = EmbeddingJobs(budget=4, max_pieces=8, split=True, padded=False), []
    jobs.add("a", [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [1, 1]])
    answers = run(jobs, log)
    assert log == [
        [([1, 2, 3, 4], 0, True, False)],
        [([5, 6, 7, 8], 4, False, False)],
        [([9, 10], 8, False, True), ([1, 1], 0, True, True)],
    ]
    [whole, short] = [unpack_vector(v) for v in answers["a"].vectors]
    assert np.allclose(whole, normalized(np.array([55.0, 10.0])))
    assert np.allclose(short, normalized(np.array([2.0, 2.0])))
    assert answers["a"].prompt_tokens == 12


def test_without_splitting_inputs_are_whole_and_batches_stay_within_the_budget():
    jobs, log = EmbeddingJobs(budget=4, max_pieces=8, split=False, padded=False), []
    jobs.add("a", [[1, 2], [3, 4, 5, 6, 7, 8], [9]])
    jobs.add("b", [[1], [2]])
    answers = run(jobs, log)
    assert [[piece[0] for piece in batch] for batch in log] == [[[1, 2]], [[3, 4, 5, 6, 7, 8]], [[9], [1], [2]]]
    assert set(answers) == {"a", "b"}


def test_padded_batches_count_rows_times_the_longest_and_respect_max_pieces():
    jobs, log = EmbeddingJobs(budget=6, max_pieces=2, split=False, padded=True), []
    jobs.add("a", [[1], [2, 2, 2], [3], [4], [5]])
    run(jobs, log)
    assert [[piece[0] for piece in batch] for batch in log] == [[[1], [2, 2, 2]], [[3], [4]], [[5]]]


def test_a_failed_batch_fails_its_requests_and_leaves_the_others():
    jobs = EmbeddingJobs(budget=2, max_pieces=8, split=False, padded=False)
    jobs.add("a", [[1, 1]])
    jobs.add("b", [[2, 2]])

    def boom(pieces):
        raise RuntimeError("decode failed")

    [(request_id, event)] = jobs.step(boom)
    assert request_id == "a"
    assert isinstance(event, Failed)
    assert "decode failed" in event.error.message
    assert len(jobs) == 1


def test_a_cancelled_request_is_never_computed():
    jobs, log = EmbeddingJobs(budget=8, max_pieces=8, split=True, padded=False), []
    jobs.add("a", [[1]])
    jobs.add("b", [[2]])
    jobs.cancel("a")
    assert set(run(jobs, log)) == {"b"}
    assert log == [[([2], 0, True, True)]]


def test_unit_length_and_the_zero_vector():
    assert np.isclose(np.linalg.norm(normalized(np.array([3.0, 4.0]))), 1.0)
    assert normalized(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def test_base64_is_little_endian_float32_as_openai_sends_it():
    packed = np.array([1.0, -0.5, 0.25], dtype="<f4").tobytes()
    assert base64_vector(packed) == base64.b64encode(packed).decode()
    assert np.frombuffer(base64.b64decode(base64_vector(packed)), dtype="<f4").tolist() == [1.0, -0.5, 0.25]
    assert unpack_vector(packed) == [1.0, -0.5, 0.25]
    assert Embedded(vectors=(packed,), prompt_tokens=1).vectors[0] == packed


def test_input_checks_name_the_input_parameter():
    check_input_tokens([1, 2], 0, limit=2, vocab_size=10)
    with pytest.raises(ContextLengthExceeded) as too_long:
        check_input_tokens([1, 2, 3], 4, limit=2, vocab_size=10)
    assert too_long.value.param == "input"
    assert "input 4 has 3 tokens" in too_long.value.message
    for tokens in ([], [10]):
        with pytest.raises(InvalidRequest) as bad:
            check_input_tokens(tokens, 0, limit=5, vocab_size=10)
        assert bad.value.param == "input"
    check_dimensions(None, 8)
    check_dimensions(8, 8)
    with pytest.raises(InvalidRequest) as wrong:
        check_dimensions(4, 8)
    assert wrong.value.param == "dimensions"


def test_tasks_default_to_both_and_an_embedding_folder_embeds_only(tmp_path):
    assert ModelSpec().effective_tasks() == ("generate", "embed")
    assert ModelSpec(backend="fake", tasks=["embed"]).effective_tasks() == ("embed",)
    sentence_transformers = tmp_path / "st"
    sentence_transformers.mkdir()
    (sentence_transformers / "modules.json").write_text("[]")
    encoder, causal = tmp_path / "bert", tmp_path / "llama"
    for folder, architecture in ((encoder, "BertModel"), (causal, "LlamaForCausalLM")):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"architectures": [architecture]}))
    for folder, generative in ((sentence_transformers, False), (encoder, False), (causal, True)):
        assert is_generative_folder(folder) is generative
        tasks = ("generate", "embed") if generative else ("embed",)
        assert ModelSpec(backend="transformers", path=str(folder)).effective_tasks() == tasks
    assert is_generative_folder(tmp_path / "model.gguf")  # a file or a hub id: a generative model
    assert ModelSpec(backend="llama_cpp", path=str(encoder)).effective_tasks() == ("generate", "embed")


def test_tasks_flag_and_its_bounds():
    args = build_parser().parse_args(["models", "--backend", "fake", "--tasks", "embed"])
    assert settings_from_args(args).models[0].tasks == ["embed"]
    with pytest.raises(ValueError, match="tasks"):
        ModelSpec(backend="fake", tasks=["summarize"])
    with pytest.raises(ValueError, match="tasks"):
        ModelSpec(backend="fake", tasks=[])
