"""The `adapters:` of a model spec: one shape in the config file, on the command line and in /admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from warmserve.adapters import AdapterSpec
from warmserve.admin_protocol import AdminAdapter
from warmserve.cli import build_parser, settings_from_args
from warmserve.config import ModelSpec, ServerSettings, load_settings


@pytest.fixture
def lora(tmp_path: Path) -> str:
    path = tmp_path / "warmy.gguf"
    path.write_bytes(b"GGUF")
    return str(path)


@pytest.fixture
def peft_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "warmy-peft"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_the_config_file_lists_adapters_with_a_default_scale(tmp_path: Path, lora: str):
    config = tmp_path / "warmserve.yaml"
    config.write_text(f"models:\n  - name: base\n    adapters:\n      - {{name: warmy, path: {lora}, scale: 0.5}}\n")
    [spec] = load_settings(config).models
    assert spec.adapters == [AdapterSpec(name="warmy", path=lora, scale=0.5)]
    assert AdapterSpec(name="x", path=lora).scale == 1.0


def test_the_command_line_takes_name_equals_path_and_the_flag_repeats(lora: str):
    args = build_parser().parse_args(["serve", "--adapter", f"a={lora},b={lora}", "--adapter", f"c={lora}"])
    [spec] = settings_from_args(args).models
    assert [(a.name, a.path) for a in spec.adapters] == [("a", lora), ("b", lora), ("c", lora)]
    with pytest.raises(ValidationError, match="NAME=PATH"):
        AdapterSpec.model_validate("no-path")


def test_a_missing_file_is_an_error_naming_the_adapter(tmp_path: Path):
    with pytest.raises(ValidationError, match=r"adapter 'warmy' cannot be loaded: the GGUF LoRA file .*nope\.gguf"):
        ModelSpec(adapters=[AdapterSpec(name="warmy", path=str(tmp_path / "nope.gguf"))])


def test_a_transformers_adapter_is_a_peft_folder_with_config_and_weights(tmp_path: Path, peft_folder: Path, lora: str):
    spec = ModelSpec(backend="transformers", path=str(tmp_path), adapters=[{"name": "w", "path": str(peft_folder)}])
    assert spec.adapters[0].file_problem("transformers") is None
    assert "does not exist" in (AdapterSpec(name="w", path=lora).file_problem("transformers") or "")
    (peft_folder / "adapter_model.safetensors").unlink()
    assert "has no weights" in (AdapterSpec(name="w", path=str(peft_folder)).file_problem("transformers") or "")
    (peft_folder / "adapter_config.json").unlink()
    assert "no adapter_config.json" in (AdapterSpec(name="w", path=str(peft_folder)).file_problem("transformers") or "")


def test_adapter_names_are_unique_among_every_model_and_adapter(lora: str):
    twice = [{"name": "w", "path": lora}, {"name": "w", "path": lora}]
    with pytest.raises(ValidationError, match="adapter names must be unique; repeated: w"):
        ModelSpec(adapters=twice)
    with pytest.raises(ValidationError, match="unique across models; repeated: w"):
        ServerSettings(
            models=[ModelSpec(name="a", adapters=twice[:1]), ModelSpec(name="b", adapters=twice[1:])],
        )
    with pytest.raises(ValidationError, match="cannot share a model's name: b"):
        ServerSettings(models=[ModelSpec(name="a", adapters=[{"name": "b", "path": lora}]), ModelSpec(name="b")])


def test_an_embedding_only_model_takes_no_adapters(lora: str):
    with pytest.raises(ValidationError, match="adapters need a model that generates"):
        ModelSpec(tasks=["embed"], adapters=[{"name": "w", "path": lora}])


def test_the_scale_is_bounded_and_unknown_keys_are_refused(lora: str):
    with pytest.raises(ValidationError, match="scale"):
        AdapterSpec(name="w", path=lora, scale=100)
    with pytest.raises(ValidationError, match="rank"):
        AdapterSpec.model_validate({"name": "w", "path": lora, "rank": 8})


def test_the_admin_answer_carries_the_spec_as_the_config_file_writes_it(lora: str):
    answer = AdminAdapter(id="w", model="base", state="ready", running=0, spec=AdapterSpec(name="w", path=lora))
    body = answer.model_dump(mode="json")
    assert body["object"] == "admin.adapter"
    assert AdapterSpec.model_validate(body["spec"]) == answer.spec
