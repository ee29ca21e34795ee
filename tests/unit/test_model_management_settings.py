"""The settings behind runtime model management: lazy, idle_unload_s and admin keys, from flags or file."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from warmserve.cli import build_parser, settings_from_args
from warmserve.config import ModelSpec, ServerSettings, load_settings


def test_models_load_at_start_and_stay_loaded_by_default():
    spec = ModelSpec(backend="fake")
    assert (spec.lazy, spec.idle_unload_s) == (False, None)


def test_lazy_and_idle_unload_come_from_flags():
    args = build_parser().parse_args(["models", "--backend", "fake", "--lazy", "--idle-unload-s", "90"])
    [spec] = settings_from_args(args).models
    assert (spec.lazy, spec.idle_unload_s) == (True, 90.0)


def test_lazy_and_idle_unload_come_from_the_config_file(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "models:\n  - {name: a, backend: fake, lazy: true, idle_unload_s: 600}\n  - {name: b, backend: fake}\n"
    )
    a, b = load_settings(config).models
    assert (a.lazy, a.idle_unload_s, b.lazy, b.idle_unload_s) == (True, 600.0, False, None)


@pytest.mark.parametrize("value", [0, -1, 10**9])
def test_idle_unload_is_bounded(value):
    with pytest.raises(ValidationError, match="idle_unload_s"):
        ModelSpec(backend="fake", idle_unload_s=value)


def test_admin_keys_default_to_the_api_keys_and_replace_them_when_set():
    assert ServerSettings(api_keys=["k"]).accepted_admin_keys() == ["k"]
    assert ServerSettings(api_keys=["k"], admin_api_keys=["adm"]).accepted_admin_keys() == ["adm"]
    args = build_parser().parse_args(["models", "--admin-api-key", "a,b"])
    assert settings_from_args(args).accepted_admin_keys() == ["a", "b"]


def test_lazy_models_are_refused_with_ray_serve():
    with pytest.raises(ValidationError, match="not supported with Ray Serve"):
        ServerSettings(ray_address="auto", models=[ModelSpec(backend="fake", lazy=True)])
