"""The example programs run against a real server and print what the model said."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize("script", ["rose_story.py", "flower_description.py"])
def test_example_runs_against_the_default_server(script, tmp_path):
    server = start_server(["--threads", "1"], tmp_path)
    try:
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / script), "--base-url", f"{server.base_url}/v1"],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    finally:
        server.stop()
    assert done.stdout.strip()
