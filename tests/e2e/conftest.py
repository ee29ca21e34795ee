"""What the end-to-end modules share: each defines its own module-scoped `server`, this its client,
and one real-model server for the modules that only read from it."""

from collections.abc import Iterator

import openai
import pytest

from tests.conftest import start_server
from warmserve.testing import ServerProcess


@pytest.fixture(scope="session")
def smollm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The embedded SmolLM2 on 2 single-thread workers, started once for every read-only module."""
    server = start_server(["--workers", "2", "--threads", "1", "--n-ctx", "1024"], tmp_path_factory.mktemp("real"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    """The official client for the module's `server`."""
    return server.openai_client()
