from pathlib import Path

import pytest
from pydantic import ValidationError

from warmserve.cli import build_parser, main, settings_from_args
from warmserve.config import (
    EMBEDDED_MODEL_NAME,
    ModelSpec,
    ServerSettings,
    default_data_dir,
    embedded_model_path,
    load_settings,
)


def test_no_models_means_the_embedded_smollm2(monkeypatch):
    settings = load_settings()
    [spec] = settings.models
    assert spec.name == EMBEDDED_MODEL_NAME
    assert spec.model_file() == embedded_model_path()
    assert embedded_model_path().stat().st_size > 50_000_000


def test_precedence_is_flags_then_env_then_file(tmp_path: Path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("host: 0.0.0.0\nport: 9001\nlog_level: debug\n")
    assert load_settings(config).port == 9001
    monkeypatch.setenv("WARMSERVE_PORT", "9002")
    settings = load_settings(config)
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 9002, "debug")
    assert load_settings(config, port=9003).port == 9003


def test_config_file_lists_several_models(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "models:\n  - {path: /models/a.gguf, workers: 2, threads: 1}\n  - {name: b, backend: fake, n_ctx: 128}\n"
    )
    a, b = load_settings(config).models
    assert (a.name, a.workers, a.effective_threads()) == ("a", 2, 1)
    assert (b.name, b.backend, b.n_ctx) == ("b", "fake", 128)


def test_unknown_keys_and_duplicate_names_are_rejected(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("prot: 1\n")
    with pytest.raises(ValidationError):
        load_settings(config)
    with pytest.raises(ValidationError, match="unique"):
        ServerSettings(models=[ModelSpec(name="x", backend="fake"), ModelSpec(name="x", backend="fake")])


def test_missing_model_file_says_which(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"nope\.gguf"):
        ModelSpec(path=str(tmp_path / "nope.gguf")).model_file()


def test_threads_default_to_cores_split_between_workers(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert ModelSpec(workers=2).effective_threads() == 4
    assert ModelSpec(workers=16).effective_threads() == 1


def test_model_flags_build_one_model_that_replaces_the_file_list(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("port: 9100\nmodels:\n  - {name: other, backend: fake}\n")
    args = build_parser().parse_args(
        [
            "serve",
            "--config",
            str(config),
            "--model",
            "/m/my.gguf",
            "--served-model-name",
            "mine",
            "--workers",
            "2",
            "--threads",
            "1",
            "--n-ctx",
            "1024",
            "--n-gpu-layers",
            "-1",
            "--port",
            "9200",
        ]
    )
    settings = settings_from_args(args)
    [spec] = settings.models
    assert (spec.name, spec.path, spec.workers, spec.threads, spec.n_ctx, spec.n_gpu_layers) == (
        "mine",
        "/m/my.gguf",
        2,
        1,
        1024,
        -1,
    )
    assert settings.port == 9200


def test_flags_are_bounded_like_the_settings():
    with pytest.raises(SystemExit) as info:
        main(["models", "--workers", "65"])
    assert info.value.code == 2


def test_models_command_shows_what_is_configured(capsys):
    assert main(["models", "--model", "/m/x.gguf", "--workers", "3"]) == 0
    out = capsys.readouterr().out
    assert "x" in out.splitlines()[1]
    assert "/m/x.gguf" in out


def test_transformers_workers_default_to_one_per_gpu(monkeypatch, tmp_path: Path):
    from warmserve import machine

    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (tmp_path / bus).mkdir()
    count = machine.visible_gpu_count
    assert count(tmp_path / "absent") == 0
    monkeypatch.setattr(machine, "visible_gpu_count", lambda: count(tmp_path))
    assert ModelSpec(backend="transformers").workers == 2
    assert ModelSpec(backend="transformers", device="cpu").workers == 1
    assert ModelSpec(backend="transformers", workers=3).workers == 3


def test_gguf_on_a_cpu_gets_one_single_thread_worker_per_core_that_fits_in_memory(monkeypatch):
    from warmserve import machine

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.setattr(machine, "total_memory_bytes", lambda: 64 * 2**30)
    spec = ModelSpec()  # the embedded ~100 MB model: all 8 fit
    assert (spec.workers, spec.effective_threads()) == (8, 1)
    monkeypatch.setattr(machine, "total_memory_bytes", lambda: 600 * 2**20)
    assert ModelSpec().workers == 1  # 2 x 100 MB per worker in half of 600 MB
    assert ModelSpec(n_gpu_layers=-1).workers == 1  # on a GPU: one worker
    assert ModelSpec(workers=3).workers == 3


def test_slots_is_every_engines_capacity_with_a_default_per_engine():
    assert ModelSpec().slots == 4
    assert ModelSpec(backend="fake").slots == 4
    assert ModelSpec(backend="transformers", path="x").slots == 8
    assert ModelSpec(backend="transformers", path="x", slots=2).slots == 2


def test_old_capacity_names_still_work_in_the_file_env_and_flags(tmp_path: Path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text(
        "models:\n  - {name: t, backend: transformers, path: x, max_batch_size: 3}\n"
        "  - {name: f, backend: fake, fake: {capacity: 2}}\n"
        "  - {name: g, backend: fake, slots: 5, fake: {capacity: 2}}\n"
    )
    assert [m.slots for m in load_settings(config).models] == [3, 2, 5]
    monkeypatch.setenv("WARMSERVE_MODELS", '[{"backend": "transformers", "path": "x", "max_batch_size": 6}]')
    assert [m.slots for m in load_settings().models] == [6]
    monkeypatch.delenv("WARMSERVE_MODELS")
    args = build_parser().parse_args(["serve", "--backend", "transformers", "--model", "x", "--max-batch-size", "7"])
    assert settings_from_args(args).models[0].slots == 7


def test_the_data_dir_is_xdg_data_home_else_local_share_and_expands_home(monkeypatch):
    home = Path.home()
    assert default_data_dir({"XDG_DATA_HOME": "/srv/data"}) == Path("/srv/data/warmserve")
    assert default_data_dir({"XDG_DATA_HOME": "relative"}) == home / ".local/share/warmserve"  # ignored, per XDG
    assert default_data_dir({}) == home / ".local/share/warmserve"
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/other")
    assert ServerSettings().data_dir == Path("/srv/other/warmserve")
    monkeypatch.setenv("WARMSERVE_DATA_DIR", "~/responses")
    assert ServerSettings().data_dir == home / "responses"


def test_the_response_store_is_on_by_default_and_has_flags():
    settings = ServerSettings()
    assert (settings.store, settings.response_store_max_count, settings.response_store_max_age_s) == (
        True,
        10_000,
        30 * 86_400,
    )
    args = build_parser().parse_args(
        [
            "serve",
            "--no-store",
            "--data-dir",
            "/d",
            "--response-store-max-count",
            "5",
            "--response-store-max-age-s",
            "60",
        ]
    )
    settings = settings_from_args(args)
    assert (settings.store, settings.data_dir, settings.response_store_max_count) == (False, Path("/d"), 5)
    assert settings.response_store_max_age_s == 60
    with pytest.raises(SystemExit) as info:
        main(["models", "--response-store-max-count", "0"])
    assert info.value.code == 2


def test_a_models_sampling_defaults_come_from_the_file_or_a_json_flag(tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  - {name: q, backend: fake, sampling: {temperature: 0.6, top_k: 20, min_p: 0}}\n")
    [spec] = load_settings(config).models
    assert (spec.sampling.temperature, spec.sampling.top_k, spec.sampling.min_p, spec.sampling.top_p) == (
        0.6,
        20,
        0,
        None,
    )
    args = build_parser().parse_args(["serve", "--backend", "fake", "--sampling", '{"repetition_penalty": 1.1}'])
    [flagged] = settings_from_args(args).models
    assert flagged.sampling.repetition_penalty == 1.1
    for bad in ('{"top_k": -5}', '{"frobnicate": 1}', "[1]"):
        with pytest.raises(SystemExit):
            main(["models", "--backend", "fake", "--sampling", bad])
