from pathlib import Path

import huggingface_hub.constants
import pytest

from warmserve.backends.hf import source
from warmserve.backends.hf.source import model_directory
from warmserve.config import ModelSpec
from warmserve.errors import ModelSourceError
from warmserve.hub import snapshot


def spec(path: str | None, **fields) -> ModelSpec:
    return ModelSpec(backend="transformers", path=path, **fields)


def test_a_local_directory_is_used_as_it_is(tmp_path: Path):
    assert model_directory(spec(str(tmp_path))) == tmp_path


def test_hub_ids_go_through_the_downloader_with_the_revision(tmp_path: Path):
    calls = []

    def fake_hub(repo_id: str, revision: str | None) -> Path:
        calls.append((repo_id, revision))
        return tmp_path

    assert model_directory(spec("acme/tiny-model", revision="v2"), download=fake_hub) == tmp_path
    assert calls == [("acme/tiny-model", "v2")]


def test_offline_hub_download_says_what_to_do(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelSourceError, match="warmserve pull --backend transformers acme/absent"):
        snapshot("acme/absent", None)


def test_a_file_that_is_not_gguf_is_rejected(tmp_path: Path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"x")
    with pytest.raises(ModelSourceError, match="not a GGUF"):
        model_directory(spec(str(weights)))


def test_a_path_that_is_nowhere_is_rejected():
    with pytest.raises(ModelSourceError, match="neither"):
        model_directory(spec("/no/such/../dir/at/all"))


def test_a_gguf_model_on_the_hub_is_converted_from_its_cached_file(tmp_path: Path, monkeypatch):
    """The pool downloaded it already; the worker finds it in the cache and converts it like a local GGUF."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--acme--tiny-GGUF"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "tiny-Q4_0.gguf").write_bytes(b"GGUF")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    converted = []

    def convert(gguf: Path, cache_dir: Path, trust_remote_code: bool = False) -> Path:
        converted.append(gguf)
        return tmp_path

    monkeypatch.setattr(source, "converted_gguf", convert)
    assert model_directory(spec("acme/tiny-GGUF:q4_0")) == tmp_path
    assert converted == [snapshot / "tiny-Q4_0.gguf"]
