"""The example programs run against a real server and print what the model said."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, start_server
from tests.ggml_model import TinyLlama, write_ggjt

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(["--threads", "1"], tmp_path_factory.mktemp("examples"))
    yield server
    server.stop()


@pytest.mark.parametrize("script", ["rose_story.py", "flower_description.py"])
def test_example_runs_against_the_default_server(script, server):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--base-url", f"{server.base_url}/v1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip()


@pytest.fixture(scope="module")
def ggml_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The tutorial's `llama-2-7b-chat.ggmlv3.q4_K_S.bin` stood in for by a tiny GGJT v3 file, converted at start."""
    tmp = tmp_path_factory.mktemp("ggml-example")
    stand_in = write_ggjt(TinyLlama(), tmp / "tiny.ggmlv3.q8_0.bin")
    args = ["--model", str(stand_in), "--served-model-name", "llama-2-7b-chat", "--cache-dir", str(tmp / "cache")]
    server = start_server([*args, "--workers", "1", "--threads", "1", "--n-ctx", "1024"], tmp)
    yield server
    server.stop()


def test_the_custom_llm_example_runs_against_its_ggml_model_served_through_the_conversion(ggml_server):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "langchain_custom_llm.py"), "--base-url", ggml_server.openai_base_url],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    label, _, answer = done.stdout.strip().partition(": ")
    assert label == "CustomLLM"
    assert answer.strip()
