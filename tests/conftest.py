"""Shared fixtures: fake-backend settings, and real server processes on free ports."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from warmserve import testing
from warmserve.config import ModelSpec, ServerSettings, embedded_model_path
from warmserve.model_options import FakeOptions
from warmserve.testing import ServerProcess

__all__ = ["LoraFiles", "ServerProcess", "fake_settings", "start_fake_server", "start_server", "write_config"]

_DATA_HOME = pytest.StashKey[tuple[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """XDG_DATA_HOME points at a temporary folder for the whole run, before any settings are built, so
    no server a test starts (in this process, a Ray actor, or a subprocess) defaults its data_dir to
    the developer's ~/.local/share/warmserve."""
    config.stash[_DATA_HOME] = (tempfile.mkdtemp(prefix="warmserve-test-data-"), os.environ.get("XDG_DATA_HOME"))
    os.environ["XDG_DATA_HOME"] = config.stash[_DATA_HOME][0]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _DATA_HOME not in config.stash:
        return
    folder, previous = config.stash[_DATA_HOME]
    shutil.rmtree(folder, ignore_errors=True)
    if previous is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = previous


def fake_settings(
    workers: int = 1,
    n_ctx: int = 256,
    model: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    **fake: Any,
) -> ServerSettings:
    """Settings serving one fake model; `model` and `server` override ModelSpec / ServerSettings fields."""
    spec = ModelSpec(
        name="fake", backend="fake", workers=workers, n_ctx=n_ctx, fake=FakeOptions(**fake), **(model or {})
    )
    return ServerSettings(models=[spec], **(server or {}))


def start_server(args: list[str], tmp: Path) -> ServerProcess:
    """A ready `warmserve serve ARGS` process logging to tmp/server.log; the caller stops it."""
    return testing.start_server(args, log_path=tmp / "server.log")


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def start_fake_server(
    tmp: Path, fake: dict[str, Any], workers: int = 1, n_ctx: int = 1024, **server: Any
) -> ServerProcess:
    """A real `warmserve serve` process serving one fake model named "fake", from a config file."""
    model = {"name": "fake", "backend": "fake", "workers": workers, "n_ctx": n_ctx, "fake": fake}
    config = write_config(tmp / "warmserve.yaml", {**server, "models": [model]})
    return start_server(["--config", str(config)], tmp)


@pytest.fixture(scope="session")
def hf_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion of the embedded GGUF to safetensors, shared by the transformers tests."""
    return tmp_path_factory.mktemp("hf-cache")


@dataclass(frozen=True)
class LoraFiles:
    """A LoRA adapter of SmolLM2 for both engines (tests/lora.py), and misfits for the 400s."""

    base: Path  # the transformers folder SmolLM2's GGUF converts to
    peft: Path  # the adapter, a PEFT folder
    gguf: Path  # the same weights for llama.cpp
    peft_other_model: Path
    peft_wrong_rank: Path
    gguf_other_model: Path
    gguf_wrong_rank: Path


@pytest.fixture(scope="session")
def lora_files(hf_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LoraFiles:
    """Trained once per run (a few seconds of PEFT on the converted SmolLM2), shared by both engines' tests."""
    from tests import lora
    from warmserve.backends.hf.source import converted_gguf

    folder = tmp_path_factory.mktemp("lora")
    base = converted_gguf(embedded_model_path(), hf_cache_dir)
    config = json.loads((base / "config.json").read_text())
    peft = lora.train_warmy(base, folder / "warmy")
    other = lora.peft_of_another_model(folder / "other-model")
    tiny = {"num_attention_heads": 4, "num_key_value_heads": 4}
    return LoraFiles(
        base=base,
        peft=peft,
        gguf=lora.write_gguf_lora(peft, folder / "warmy.gguf", config),
        peft_other_model=other,
        peft_wrong_rank=lora.peft_with_wrong_rank(peft, folder / "wrong-rank"),
        gguf_other_model=lora.write_gguf_lora(other, folder / "other-model.gguf", tiny),
        gguf_wrong_rank=lora.gguf_with_wrong_rank(peft, folder / "wrong-rank.gguf", config),
    )


@pytest.fixture(scope="session")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real HTTP server process with two slow fake workers, for disconnect and crash tests."""
    fake = {"token_delay_s": 0.02, "capacity": 2, "crash_on": "CRASH"}
    server = start_fake_server(tmp_path_factory.mktemp("fake-server"), fake, workers=2, n_ctx=100_000)
    yield server
    server.stop()
