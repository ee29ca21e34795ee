"""The example programs run against a real server and print what the model said."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, start_server

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
