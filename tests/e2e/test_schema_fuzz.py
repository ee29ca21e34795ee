"""Schemathesis against the server's own OpenAPI schema: no 5xx, answers match the schema.

Bounded: a fixed number of generated requests per operation, against a real server
process with the fake backend.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import ServerProcess, start_fake_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_fake_server(tmp_path_factory.mktemp("fuzz"), {"capacity": 8}, n_ctx=512)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")


def test_no_server_errors_and_answers_match_the_schema(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/completions", "/v1/models"}
    # Admin changes start and stop worker processes (tests/api/test_admin.py); only read them here.
    operations = [op for op in operations if not op.path.startswith("/admin") or op.method.upper() == "GET"]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            # Every default check but one: some valid-looking bodies are rightly refused for
            # reasons a schema cannot state (stream_options without stream, a prompt over the
            # context), as OpenAI refuses them too.
            case.call_and_validate(timeout=30, excluded_checks=[positive_data_acceptance])

        check()
