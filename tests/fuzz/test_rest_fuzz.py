"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis):
no input gets a 5xx, and responses conform to the documented schemas."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from switchboard.app import create_app
from switchboard.config import Settings
from tests.helpers import AUTH, ServerProcess

Case = schemathesis.Case[Any]

# The document the server serves, loaded at collection time; calls go to a real server.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()
).exclude(path_regex=r"/stream$")  # an SSE response never ends by itself


def test_served_document_is_the_one_fuzzed(fuzz_server: ServerProcess) -> None:
    served = httpx.get(f"{fuzz_server.base_url}/openapi.json").json()
    assert served == create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api(case: Case, fuzz_server: ServerProcess) -> None:
    case.call_and_validate(
        base_url=fuzz_server.base_url,
        headers=AUTH,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api_anonymously(case: Case, fuzz_server: ServerProcess) -> None:
    case.call_and_validate(
        base_url=fuzz_server.base_url, checks=[not_a_server_error, content_type_conformance]
    )
