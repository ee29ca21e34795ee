"""Hub references: what a name means, and which of a repo's files it picks (no network here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from warmserve.config import ModelSpec
from warmserve.errors import ModelReferenceError
from warmserve.hub import HubReference, available_quants, parse_reference, pick_files
from warmserve.hub.reference import quant_of, split_part

BARTOWSKI = [
    "README.md",
    "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
    "Llama-3.2-1B-Instruct-Q4_K_S.gguf",
    "Llama-3.2-1B-Instruct-IQ3_XXS.gguf",
    "Llama-3.2-1B-Instruct-f16.gguf",
    "Q8_0/Llama-3.2-1B-Instruct-Q8_0-00001-of-00002.gguf",
    "Q8_0/Llama-3.2-1B-Instruct-Q8_0-00002-of-00002.gguf",
    "mmproj-Llama-3.2-1B-f16.gguf",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("owner/repo:Q4_K_M", HubReference("owner/repo", quant="Q4_K_M")),
        ("owner/repo:q4_k_m", HubReference("owner/repo", quant="Q4_K_M")),
        ("hf.co/owner/repo:Q8_0", HubReference("owner/repo", quant="Q8_0")),
        ("huggingface.co/owner/repo", HubReference("owner/repo")),
        ("owner/repo/model-Q4_1.gguf", HubReference("owner/repo", filename="model-Q4_1.gguf")),
        (
            "owner/Repo.v2-GGUF/Q8_0/m-00001-of-00002.gguf",
            HubReference("owner/Repo.v2-GGUF", filename="Q8_0/m-00001-of-00002.gguf"),
        ),
        ("owner/repo", HubReference("owner/repo")),
    ],
)
def test_hub_references_parse(text: str, expected: HubReference):
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/models/model.gguf",
        "./model.gguf",
        "~/model.gguf",
        "../owner/repo:Q4",
        "model.gguf",
        "models/model.gguf",  # a two-part path to a .gguf is a (missing) local file
        "owner/repo/weights.bin",
        "owner/repo/../x.gguf",
        "owner/repo:Q4 K",
        "owner/repo/x.gguf:Q4_0",
        "C:\\models\\x.gguf",
    ],
)
def test_local_paths_and_nonsense_are_no_references(text: str):
    assert parse_reference(text) is None


def test_a_bare_repo_is_a_whole_folder_when_only_gguf_references_count():
    assert parse_reference("owner/repo", gguf_only=True) is None
    assert parse_reference("owner/repo:Q4_0", gguf_only=True) == HubReference("owner/repo", quant="Q4_0")


def test_references_print_as_they_are_written_and_name_the_served_model():
    assert str(HubReference("o/r", quant="Q4_1")) == "o/r:Q4_1"
    assert str(HubReference("o/r", filename="d/f.gguf")) == "o/r/d/f.gguf"
    assert HubReference("o/smol-GGUF", quant="Q4_1").served_name == "smol-GGUF:Q4_1"
    assert HubReference("o/r", filename="Q8_0/m-Q8_0-00001-of-00002.gguf").served_name == "m-Q8_0"


def test_quants_and_split_parts_are_read_from_file_names():
    assert quant_of("Llama-3.2-1B-Instruct-Q4_K_M.gguf") == "Q4_K_M"
    assert quant_of("x.iq3_xxs.gguf") == "IQ3_XXS"
    assert quant_of("Q8_0/m-Q8_0-00001-of-00002.gguf") == "Q8_0"
    assert quant_of("model-f16.gguf") == "F16"
    assert quant_of("model.gguf") is None
    assert split_part("m-Q8_0-00002-of-00003.gguf") == ("m-Q8_0", 2, 3)
    assert split_part("m-Q8_0.gguf") is None


def test_a_quant_picks_its_file_case_insensitively_and_not_a_longer_quant():
    assert pick_files(HubReference("o/r", quant="Q4_K_M"), BARTOWSKI) == ["Llama-3.2-1B-Instruct-Q4_K_M.gguf"]
    assert pick_files(HubReference("o/r", quant="IQ3_XXS"), BARTOWSKI) == ["Llama-3.2-1B-Instruct-IQ3_XXS.gguf"]
    with pytest.raises(ModelReferenceError, match="quant Q4_K;"):
        pick_files(HubReference("o/r", quant="Q4_K"), BARTOWSKI)


def test_a_split_model_is_every_part_in_order():
    parts = [
        "Q8_0/Llama-3.2-1B-Instruct-Q8_0-00001-of-00002.gguf",
        "Q8_0/Llama-3.2-1B-Instruct-Q8_0-00002-of-00002.gguf",
    ]
    assert pick_files(HubReference("o/r", quant="Q8_0"), reversed(BARTOWSKI)) == parts
    assert pick_files(HubReference("o/r", filename=parts[1]), BARTOWSKI) == parts


def test_a_split_model_missing_a_part_is_not_offered():
    incomplete = ["m-Q8_0-00001-of-00003.gguf", "m-Q8_0-00003-of-00003.gguf", "m-Q4_0.gguf"]
    assert available_quants(incomplete) == ["Q4_0"]


def test_a_wrong_quant_lists_the_quants_the_repo_has_without_projectors():
    with pytest.raises(ModelReferenceError) as raised:
        pick_files(HubReference("o/r", quant="Q5_K_M"), BARTOWSKI)
    assert raised.value.param == "path"
    assert "its quants: F16, IQ3_XXS, Q4_K_M, Q4_K_S, Q8_0." in raised.value.message
    assert "o/r:" in raised.value.message


def test_without_a_quant_the_only_model_or_else_q4_k_m_is_picked():
    assert pick_files(HubReference("o/r"), ["README.md", "m-Q8_0.gguf", "mmproj-f16.gguf"]) == ["m-Q8_0.gguf"]
    assert pick_files(HubReference("o/r"), BARTOWSKI) == ["Llama-3.2-1B-Instruct-Q4_K_M.gguf"]
    with pytest.raises(ModelReferenceError, match=r"default quant \(Q4_K_M\); its quants: Q4_0, Q8_0"):
        pick_files(HubReference("o/r"), ["m-Q4_0.gguf", "m-Q8_0.gguf"])


def test_a_repo_without_gguf_files_says_to_use_transformers():
    with pytest.raises(ModelReferenceError, match="--backend transformers"):
        pick_files(HubReference("o/r"), ["config.json", "model.safetensors"])


def test_two_models_of_one_quant_ask_for_the_file():
    with pytest.raises(ModelReferenceError, match=r"name the file: o/r/a-Q4_0\.gguf, o/r/b-Q4_0\.gguf"):
        pick_files(HubReference("o/r", quant="Q4_0"), ["a-Q4_0.gguf", "b-Q4_0.gguf"])


def test_a_named_file_is_that_file_even_a_projector():
    assert pick_files(HubReference("o/r", filename="mmproj-Llama-3.2-1B-f16.gguf"), BARTOWSKI) == [
        "mmproj-Llama-3.2-1B-f16.gguf"
    ]
    with pytest.raises(ModelReferenceError, match=r"has no file nope\.gguf"):
        pick_files(HubReference("o/r", filename="nope.gguf"), BARTOWSKI)


def test_a_model_spec_names_a_hub_model_only_when_its_path_is_no_local_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "repo").mkdir(parents=True)
    (tmp_path / "owner" / "repo" / "m-Q4_0.gguf").write_bytes(b"GGUF")
    assert ModelSpec(path="owner/repo/m-Q4_0.gguf", workers=1).hub_reference() is None
    assert ModelSpec(path="owner/repo/m-Q8_0.gguf", workers=1).hub_reference() == HubReference(
        "owner/repo", filename="m-Q8_0.gguf"
    )
    assert ModelSpec(path="owner/repo", backend="transformers").hub_reference() is None  # a local folder
    assert ModelSpec(path="acme/tiny", backend="transformers").hub_reference() is None  # a whole repo
    assert ModelSpec(path="acme/tiny:Q4_0", backend="transformers").hub_reference() == HubReference(
        "acme/tiny", quant="Q4_0"
    )
    assert ModelSpec(path="acme/tiny-GGUF:q4_0", workers=1).name == "tiny-GGUF:Q4_0"


def test_an_automatic_worker_count_is_worked_out_again_once_the_file_is_there(tmp_path: Path):
    missing = tmp_path / "model.gguf"
    spec = ModelSpec(path=str(missing), threads=1)
    assert spec.workers == 1  # the size is unknown, so one worker until the file is there
    missing.write_bytes(b"GGUF" + bytes(1000))
    assert spec.with_auto_workers().workers == ModelSpec(path=str(missing), threads=1).workers
    assert ModelSpec(path=str(missing), workers=1, threads=1).with_auto_workers().workers == 1  # set: it stays
