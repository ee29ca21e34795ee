"""The fake hub serving SmolLM2 (one file, and split in three), and the environment that points
huggingface_hub at it with a cache of the test's own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.fake_hub import FakeHub
from tests.hub.gguf_split import write_split
from warmserve.config import embedded_model_path
from warmserve.testing import server_environment

SMOL = "owner/smol-GGUF"
SMOL_FILE = "smollm2-135m-instruct-Q4_1.gguf"
SPLIT = "owner/split-GGUF"
SPLIT_FILES = [f"Q4_1/smollm2-135m-instruct-Q4_1-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]


@pytest.fixture(scope="session")
def split_parts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The embedded SmolLM2 as a split model of three parts, written once."""
    folder = tmp_path_factory.mktemp("split")
    return write_split(embedded_model_path(), folder / "smollm2-135m-instruct-Q4_1.gguf", parts=3)


@pytest.fixture
def fake_hub(split_parts: list[Path]) -> Iterator[FakeHub]:
    hub = FakeHub()
    hub.add_repo(
        SMOL,
        {
            SMOL_FILE: embedded_model_path(),
            "smollm2-135m-instruct-Q8_0.gguf": b"GGUF: listed, never downloaded",
            "mmproj-smollm2-f16.gguf": b"GGUF: a projector, never picked for a quant",
            "README.md": b"# SmolLM2 135M Instruct, quantized\n",
        },
    )
    hub.add_repo(SPLIT, {name: part for name, part in zip(SPLIT_FILES, split_parts, strict=True)})
    with hub:
        yield hub


@pytest.fixture
def hub_env(fake_hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    """huggingface_hub's settings for a process the test starts: the fake hub, an empty cache, no token."""
    return {
        "HF_ENDPOINT": fake_hub.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "HF_TOKEN": "",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def pull(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`warmserve pull ARGS` under this interpreter, as a user runs it."""
    command = [sys.executable, "-m", "warmserve", "pull", *args]
    return subprocess.run(command, capture_output=True, text=True, env=server_environment(env), timeout=300)
