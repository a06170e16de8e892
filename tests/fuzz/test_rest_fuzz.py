"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis):
no input gets a 5xx, and every response is one the document declares: its status code,
content type, body schema and required headers (`ETag`, `Retry-After`), with and without
a credential; an operation that declares its credential required refuses requests
without one (`ignored_auth`)."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from switchboard.app import create_app
from switchboard.config import Settings
from tests.helpers import AUTH, ServerProcess

Case = schemathesis.Case[Any]
CONFORMANCE: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# The document the server serves, loaded at collection time; calls go to a real server.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()
).exclude(path_regex=r"/stream$")  # an SSE response never ends by itself


def test_served_document_is_the_one_fuzzed(fuzz_server: ServerProcess) -> None:
    served = httpx.get(f"{fuzz_server.base_url}/openapi.json").json()
    assert served == create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api(case: Case, seeded_server: ServerProcess) -> None:
    case.call_and_validate(
        base_url=seeded_server.base_url,
        headers=AUTH,
        checks=[*CONFORMANCE, ignored_auth],
    )


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api_anonymously(case: Case, seeded_server: ServerProcess) -> None:
    case.call_and_validate(base_url=seeded_server.base_url, checks=CONFORMANCE)
