"""Health, readiness, OpenAPI and request IDs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support.server import LiveServer, openapi_document

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "spec" / "ENDPOINTS.md"
ROW = re.compile(r"^\|\s*(\w+)\s*\|\s*(GET|POST|PUT|PATCH|DELETE)\s*\|\s*(\S+)\s*\|")


def test_health_and_readiness(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_openapi_is_3_1_and_published_operation_ids_match_the_contract(server: LiveServer) -> None:
    doc = openapi_document(f"{server.url}/api/v1")
    assert doc["openapi"].startswith("3.1")
    contract = {}
    for line in CONTRACT.read_text().splitlines():
        m = ROW.match(line)
        if m:
            contract[(m.group(2), re.sub(r"\{[^}]+\}", "{}", m.group(3)))] = m.group(1)
    published = 0
    for path, ops in doc["paths"].items():
        shape = re.sub(r"\{[^}]+\}", "{}", re.sub(r"^/api/v1", "", path))
        for method, op in ops.items():
            expected = contract.get((method.upper(), shape))
            if expected is not None:
                published += 1
                assert op["operationId"] == expected, (method, path)
    assert published >= 20
    assert httpx.get(f"{server.url}/api/v1/docs").status_code == 200


def test_every_response_carries_a_request_id(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/api/v1/nowhere")
    assert r.status_code == 404
    rid = r.headers["x-request-id"]
    assert r.json()["error"]["details"]["requestId"] == rid
    echoed = httpx.get(f"{server.url}/healthz", headers={"X-Request-Id": "ABC123"})
    assert echoed.headers["x-request-id"] == "ABC123"
