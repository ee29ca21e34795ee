"""What the end-to-end modules share: each defines its own module-scoped `server`, this its client."""

import openai
import pytest

from warmserve.testing import ServerProcess


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    """The official client for the module's `server`."""
    return server.openai_client()
