"""OpenTelemetry traces sent over OTLP/HTTP to a collector (tests.support.otlp: a real loopback HTTP server
decoding the exports with OpenTelemetry's protobuf classes, the stand-in for a collector): a span per request,
the database statements it ran as its children, nothing for the endpoints scraped every few seconds, and no
secret in any of it. Off unless an endpoint is configured, and then the SDK is not even loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.actors import signup
from tests.support.otlp import CLIENT, SERVER, OtlpCollector, ReceivedSpan
from tests.support.server import LiveServer


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    collector = OtlpCollector().start()
    yield collector
    collector.stop()


def _status(span: ReceivedSpan) -> int | None:
    value = span.attributes.get("http.response.status_code", span.attributes.get("http.status_code"))
    return int(value) if value is not None else None


def test_requests_and_their_statements_are_traced(tmp_path: Path, database_url: str,
                                                  collector: OtlpCollector) -> None:
    settings = make_settings(tmp_path / "data", database_url, None, compute_enabled=False,
                             otlp_traces_endpoint=collector.traces_url, otel_service_name="sailplane-test")
    server = LiveServer(settings)
    server.start()
    try:
        owner = signup(f"{server.url}/api/v1")
        assert owner.post("/org/teams", json={"name": "analytics"}).status_code == 201
        assert owner.get("/org/teams").status_code == 200
        assert owner.get("/org/teams/01JB00000000000000AB").status_code == 404
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()  # sends the spans still batched

    spans = collector.spans()
    assert spans and {s.service for s in spans} == {"sailplane-test"}
    requests = [s for s in spans if s.kind == SERVER]
    by_route = {(s.attributes.get("http.route"), _status(s)): s for s in requests}
    listed = by_route[("/api/v1/org/teams", 200)]
    assert ("/api/v1/org/teams", 201) in by_route and ("/api/v1/org/teams/{team}", 404) in by_route, by_route.keys()
    assert not any("healthz" in s.name or s.attributes.get("http.route") == "/healthz" for s in spans)

    # The list's statements are children of its request span, in its trace, and say which database they ran on.
    statements = [s for s in spans if s.kind == CLIENT and s.trace_id == listed.trace_id]
    assert statements and all(s.parent_id == listed.span_id for s in statements), statements
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    assert {s.attributes.get("db.system", s.attributes.get("db.system.name")) for s in statements} == {dialect}
    assert any("team" in str(s.attributes.get("db.statement", s.attributes.get("db.query.text", ""))).lower()
               for s in statements)
    # Statement parameters are not recorded: neither the password nor the token is anywhere in what was sent.
    raw = collector.raw()
    assert owner.password.encode() not in raw and owner.token.encode() not in raw


def test_tracing_is_off_and_unloaded_without_an_endpoint(tmp_path: Path, database_url: str) -> None:
    probe = f"""
import json, sys
from tests.conftest import make_settings
from sailplane.app import create_app
from pathlib import Path
app = create_app(make_settings(Path({str(tmp_path / "data")!r}), {database_url!r}, None, compute_enabled=False))
print(json.dumps({{"tracing": app.state.tracing is not None,
                   "sdk": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")
                                 or m.startswith("opentelemetry.instrumentation"))}}))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2], check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"tracing": False, "sdk": []}
