"""The served OpenAPI document declares what the server does: the bearer scheme, the
one error shape on every 4xx/5xx, the headers the middlewares read and send."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from switchboard.auth.tokens import TOKEN_ROLES
from tests.helpers import LiveServer

ERROR_REF = "#/components/schemas/ErrorResponse"
WRITES = {"post", "put", "patch", "delete"}

pytestmark = pytest.mark.parametrize("server", ["embedded"], indirect=True)


@pytest.fixture
async def document(server: LiveServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
        response = await anonymous.get("/openapi.json")
        assert (await anonymous.get("/docs")).status_code == 200
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_bearer_scheme_is_declared_and_applied(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    for path, method, operation in operations(document):
        if not path.startswith("/api/"):
            assert "security" not in operation, path
        elif method in WRITES or path.startswith("/api/keys"):
            assert operation["security"] == [{"bearer": []}], (method, path)
        else:  # reads serve public boards to anyone
            assert {} in operation["security"]
            assert {"bearer": []} in operation["security"]


async def test_every_error_response_is_the_error_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    assert "HTTPValidationError" not in json.dumps(document)
    assert '"detail"' not in json.dumps(document)
    for path, method, operation in operations(document):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        if path.startswith("/api/"):
            assert {"401", "503"} <= errors.keys(), (method, path)
        if path == "/readyz":  # its 503 is the readiness report, not an error
            continue
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (method, path, status)
        if "429" in errors:
            assert errors["429"]["headers"]["Retry-After"]["required"] is True


async def test_writes_document_idempotency_key_and_if_match(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if method in WRITES:
            assert "Idempotency-Key" in headers, (method, path)
            assert {"400", "409", "413", "422"} <= operation["responses"].keys()
        else:
            assert "Idempotency-Key" not in headers
    widget = document["paths"]["/api/boards/{slug}/widgets/{key}"]
    for method in ("put", "patch", "delete"):
        assert any(p["name"] == "If-Match" for p in widget[method]["parameters"])
        assert "412" in widget[method]["responses"]
    assert widget["get"]["responses"]["200"]["headers"]["ETag"]["required"] is True


async def test_a_real_error_matches_the_declared_shape(server: LiveServer) -> None:
    """The 422 and the batch's 422 carry `details` as declared: `loc` strings and `msg`."""
    response = await server.http.post("/api/boards", json={"slug": "Not A Slug"})
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert set(detail) == {"loc", "msg"}
    assert all(isinstance(p, str) for p in detail["loc"])


async def test_a_405_allows_every_method_served_at_its_path(
    server: LiveServer, document: dict[str, Any]
) -> None:
    """Routing's 405 lists every method the document serves at that path, not only
    those of the first route that matched the path (FastAPI makes a route per method)."""
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "a", path)
        response = await server.http.request("OPTIONS", concrete)
        assert response.status_code == 405, path
        assert response.headers["allow"] == ", ".join(sorted(m.upper() for m in item)), path
        assert response.json()["error"]["code"] == "method_not_allowed"


async def test_a_method_no_route_serves_is_405_whatever_its_idempotency_key(
    server: LiveServer, slug: str
) -> None:
    """Routing answers first: a write no route serves is a 405 even with an
    `Idempotency-Key` already used for another request (the idempotency layer judged
    it: a 422), and claims no key."""
    await server.create_board(slug)
    await server.put_widget(slug, "s", kind="series")
    points = f"/api/boards/{slug}/widgets/s/points"
    headers = {"Idempotency-Key": f"unrouted-{slug}"}
    body = {"points": [{"v": 1}]}
    served = await server.http.post(points, json=body, headers=headers)
    assert served.status_code == 200, served.text
    for method in ("PUT", "DELETE"):
        response = await server.http.request(method, points, json=body, headers=headers)
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == "POST"
    replayed = await server.http.post(points, json=body, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == served.content


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or what its `$ref` names in the document."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_a_token_role_in_the_document_is_one_a_token_may_have(
    server: LiveServer, document: dict[str, Any]
) -> None:
    schemas = document["components"]["schemas"]
    for model in ("TokenCreate", "TokenOut"):
        declared = resolve(document, schemas[model]["properties"]["role"])
        assert set(declared["enum"]) == {r.value for r in TOKEN_ROLES}, model
    for role in sorted(TOKEN_ROLES):
        minted = await server.http.post("/api/tokens", json={"role": role.value})
        assert minted.status_code == 201, minted.text
        assert minted.json()["role"] == role.value
    refused = await server.http.post("/api/tokens", json={"role": "admin"})
    assert refused.status_code == 422
    assert "managing keys needs a key" in refused.json()["error"]["details"][0]["msg"]


async def test_no_parameter_is_declared_nullable(
    server: LiveServer, document: dict[str, Any]
) -> None:
    """An optional header or query parameter is absent or a value: `null` in one is text
    the server refuses (`Last-Event-ID: null`, `?since=null` are 422s)."""
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            assert "null" not in json.dumps(parameter["schema"]), (method, path, parameter)
    stream = document["paths"]["/api/boards/{slug}/stream"]["get"]["parameters"]
    (last_event_id,) = [p for p in stream if p["name"] == "Last-Event-ID"]
    assert last_event_id["schema"]["type"] == "integer"
    await server.create_board("nullable")
    for headers, query in (({"Last-Event-ID": "null"}, ""), ({}, "?since=null")):
        refused = await server.http.get(f"/api/boards/nullable/stream{query}", headers=headers)
        assert refused.status_code == 422, (headers, query)


IF_MATCH_SAMPLES = {
    "*": 200,
    '"{v}"': 200,
    'W/"{v}"': 200,
    "{v}": 200,
    '"opaque", "{v}"': 200,  # a list: our tags are versions, any other matches none
    '"999"': 412,
    '"opaque"': 412,  # well formed, names no version
    '"{v}", "999"': 412,  # two versions: one resource is at one of them at most
    "": 400,
    "soon": 400,
    "null": 400,
}
"""`{v}` is the widget's current version; each value's answer."""


async def test_if_match_is_refused_exactly_when_the_document_says(
    server: LiveServer, slug: str, document: dict[str, Any]
) -> None:
    """The document's pattern is what the server reads: a value outside it is a 400
    (an empty `If-Match` was offered by the schema and refused with a 412); inside it
    (RFC 9110's entity tags), one that names no current version is a 412."""
    await server.create_board(slug)
    path = f"/api/boards/{slug}/widgets/w"
    widget = document["paths"]["/api/boards/{slug}/widgets/{key}"]
    (declared,) = [p for p in widget["patch"]["parameters"] if p["name"] == "If-Match"]
    pattern = re.compile(declared["schema"]["pattern"])
    version = (await server.put_widget(slug, "w", value=0))["version"]
    for sample, expected in IF_MATCH_SAMPLES.items():
        value = sample.format(v=version)
        response = await server.http.patch(path, json={"value": 1}, headers={"If-Match": value})
        assert response.status_code == expected, (value, response.text)
        assert (pattern.fullmatch(value) is not None) == (expected != 400), value
        if expected == 400:
            assert response.json()["error"]["code"] == "bad_request"
        version = response.json().get("version", version)


OPERATION_IDS = {
    ("post", "/api/boards"): "create_board",
    ("get", "/api/boards"): "list_boards",
    ("get", "/api/boards/{slug}"): "get_board",
    ("patch", "/api/boards/{slug}"): "patch_board",
    ("delete", "/api/boards/{slug}"): "delete_board",
    ("get", "/api/boards/{slug}/widgets/{key}"): "get_widget",
    ("put", "/api/boards/{slug}/widgets/{key}"): "put_widget",
    ("patch", "/api/boards/{slug}/widgets/{key}"): "patch_widget",
    ("delete", "/api/boards/{slug}/widgets/{key}"): "delete_widget",
    ("patch", "/api/boards/{slug}/widgets"): "patch_widgets",
    ("post", "/api/boards/{slug}/widgets/{key}/points"): "append_points",
    ("get", "/api/boards/{slug}/events"): "list_events",
    ("get", "/api/boards/{slug}/stream"): "stream_events",
    ("get", "/api/keys"): "list_keys",
    ("post", "/api/keys"): "create_key",
    ("delete", "/api/keys/{key_id}"): "revoke_key",
    ("post", "/api/tokens"): "mint_token",
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("head", "/healthz"): "probe_healthz",
    ("head", "/readyz"): "probe_readyz",
    ("get", "/metrics"): "metrics",
    ("get", "/asyncapi.json"): "asyncapi",
}
"""What client generators name their methods after: a change here breaks their callers."""


async def test_every_operation_has_a_readable_id_and_a_description(
    document: dict[str, Any],
) -> None:
    ids = {(method, path): op["operationId"] for path, method, op in operations(document)}
    assert ids == OPERATION_IDS
    for path, method, operation in operations(document):
        assert operation.get("description", "").strip(), (method, path)


TEXT_SAMPLES = ["plain", "tab\tand\nnewlines\r", "snow ☃ and 😀", "nul\x00", "bell\x07", "del\x7f"]


async def test_a_title_is_refused_exactly_when_the_document_says(
    server: LiveServer, slug: str, document: dict[str, Any]
) -> None:
    """Titles and descriptions declare `clean_text`'s rule as their pattern: what the
    server refuses (control characters, lone surrogates) is outside it."""
    schemas = document["components"]["schemas"]
    patterns = {
        resolve(document, schemas[model]["properties"][field])["pattern"]
        for model, field in (("BoardCreate", "title"), ("BoardCreate", "description"))
    }
    (declared,) = patterns
    pattern = re.compile(declared)
    await server.create_board(slug)
    for sample in [*TEXT_SAMPLES, "lone \ud800 surrogate"]:
        body = json.dumps({"title": sample, "description": sample})  # `\ud800` escaped
        response = await server.http.patch(
            f"/api/boards/{slug}", content=body, headers={"content-type": "application/json"}
        )
        expected = 200 if pattern.fullmatch(sample) else 422
        assert response.status_code == expected, (sample, response.text)
