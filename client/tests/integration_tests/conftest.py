"""A real warmserve server for the session (SmolLM2, under two names), and stub servers.

The server is started by `warmserve.testing` from this environment (README's `make test`
installs it beside the client); the client itself never imports it. Its URL is put in
`WARMSERVE_BASE_URL`, which is where ChatWarmServe and WarmServeLLM look by default, so the
standard tests and the examples find it without being told.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.standard_properties import MODEL, SECOND_MODEL
from tests.stub_server import StubServer

try:
    from warmserve.testing import ServerProcess, free_port
except ModuleNotFoundError as missing:
    raise RuntimeError(
        "The integration tests start a real warmserve server: install it in this environment "
        "(`make install` at the repository root)."
    ) from missing

__all__ = ["free_port"]  # test_errors.py wants a port nothing listens on


@pytest.fixture(scope="session", autouse=True)
def warmserve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("warmserve")
    spec = {"workers": 1, "threads": 1, "n_ctx": 2048}
    config = tmp / "warmserve.yaml"  # YAML is a superset of JSON
    config.write_text(json.dumps({"models": [{"name": MODEL, **spec}, {"name": SECOND_MODEL, **spec}]}))
    with (
        ServerProcess(["--config", str(config)], log_path=tmp / "server.log") as server,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("WARMSERVE_BASE_URL", server.openai_base_url)
        patch.delenv("WARMSERVE_API_KEY", raising=False)
        yield server.openai_base_url


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.stop()
