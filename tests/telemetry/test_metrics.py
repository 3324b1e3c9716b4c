"""/metrics after real traffic, parsed with Prometheus' own text parser: the request counters move by exactly
what the test did, the state gauges show the records it made, and only loopback (or the token) may scrape.

The server has a database of its own and no compute or operation runner, so every count is this test's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from sailplane.config import Settings
from tests.notebooks.helpers import make_config, make_notebook
from tests.runs.live import create_run, make_job
from tests.support.actors import Actor, signup
from tests.support.databases import fresh_database
from tests.support.metrics import Samples, scrape, value
from tests.support.server import LiveServer, openapi_document
from tests.support.world import create_team


@pytest.fixture
def own_server(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(replace(settings, database_url=fresh_database(database_url, tmp_path),
                              data_dir=tmp_path / "data", compute_enabled=False, operations_enabled=False))
    live.start()
    try:
        yield live
    finally:
        live.stop()


def requests(samples: Samples, operation: str, method: str, status: int) -> float:
    return value(samples, "sailplane_http_requests_total", operation=operation, method=method, status=str(status))


def test_request_counters_move_by_exactly_what_was_done(own_server: LiveServer) -> None:
    owner = signup(f"{own_server.url}/api/v1")
    team = create_team(owner, "Metrics A")
    before = scrape(own_server.url)

    for name in ("Metrics B", "Metrics C", "Metrics D"):
        create_team(owner, name)
    for _ in range(2):
        assert owner.get(f"/org/teams/{team}").status_code == 200
    assert owner.get("/org/teams/01JB00000000000000AB").status_code == 404
    assert owner.post("/org/teams", json={"name": ""}).status_code == 422
    assert httpx.get(f"{own_server.url}/api/v1/no/such/route").status_code == 404
    for _ in range(2):  # notebook traffic (relayed before the API's router): counted too, under its own name
        refused = httpx.get(f"{own_server.url}/notebooks/01JB00000000000000AB/page", headers={"Accept": "text/html"})
        assert refused.status_code == 401 and refused.headers["x-request-id"]
    after = scrape(own_server.url)

    def moved(operation: str, method: str, status: int) -> float:
        return requests(after, operation, method, status) - requests(before, operation, method, status)

    assert moved("createTeam", "POST", 201) == 3
    assert moved("createTeam", "POST", 422) == 1
    assert moved("describeTeam", "GET", 200) == 2
    assert moved("describeTeam", "GET", 404) == 1
    assert moved("unmatched", "GET", 404) == 1
    assert moved("notebookProxy", "GET", 401) == 2
    hist = "sailplane_http_request_duration_seconds_count"
    assert value(after, hist, operation="createTeam", method="POST") - \
        value(before, hist, operation="createTeam", method="POST") == 4
    # The bucket at +Inf holds every observation; the latency sum is a real, positive time.
    assert value(after, "sailplane_http_request_duration_seconds_bucket", operation="describeTeam", method="GET",
                 le="+Inf") >= 3
    assert value(after, "sailplane_http_request_duration_seconds_sum", operation="describeTeam", method="GET") > 0


def test_lease_alarms_are_there_at_zero(own_server: LiveServer) -> None:
    """An operator's alert on missed leases (runs', infrastructure operations') needs the series before any miss."""
    samples = scrape(own_server.url)
    for name in ("sailplane_run_lease_renewals_missed_total", "sailplane_operation_lease_renewals_missed_total"):
        for reason in ("late", "taken_over"):
            assert samples.get((name, frozenset({"reason": reason}.items()))) == 0, (name, reason)


def test_state_gauges_count_what_exists(own_server: LiveServer) -> None:
    owner = signup(f"{own_server.url}/api/v1")
    team = create_team(owner, "State")
    empty = scrape(own_server.url)
    assert value(empty, "sailplane_notebooks", status="stopped") == 0
    assert value(empty, "sailplane_job_runs", status="pending") == 0
    # Every open session status is reported, zero included, so a dashboard never sees a gap.
    assert {value(empty, "sailplane_sessions", status=s) for s in ("pending", "active", "idle")} == {0}
    assert ("sailplane_sessions", frozenset({("status", "idle")})) in empty

    config = make_config(owner, team)
    make_notebook(owner, config, name="one")
    make_notebook(owner, config, name="two")
    job = make_job(owner, team, {"sql": {"source": "SELECT 1"}})
    create_run(owner, job["id"], hold=True)  # held: pending until released (and no dispatcher here)
    now = scrape(own_server.url)
    assert value(now, "sailplane_notebooks", status="stopped") == 2
    assert value(now, "sailplane_job_runs", status="pending") == 1
    assert value(now, "sailplane_db_pool_size", pool="requests") == own_server.settings.max_concurrent_requests
    assert "sailplane_db_pool_connections_in_use" in {name for name, _ in now}


def test_only_loopback_scrapes_without_a_token(own_server: LiveServer) -> None:
    # A client outside (as a reverse proxy on this host reports it) is refused in the one error shape.
    r = httpx.get(f"{own_server.url}/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert "sailplane_http_requests" not in r.text


def test_with_a_token_every_scraper_must_present_it(settings: Settings, database_url: str, tmp_path: Path) -> None:
    live = LiveServer(replace(settings, database_url=fresh_database(database_url, tmp_path),
                              data_dir=tmp_path / "data", compute_enabled=False, operations_enabled=False,
                              metrics_token="scrape-secret-1"))
    live.start()
    try:
        assert httpx.get(f"{live.url}/metrics").status_code == 401
        wrong = httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert "scrape-secret-1" not in wrong.text
        outside = httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer scrape-secret-1",
                                                            "X-Forwarded-For": "203.0.113.7"})
        assert outside.status_code == 200
        assert "sailplane_http_requests_total" in outside.text
    finally:
        live.stop()


def test_with_metrics_off_requests_are_not_counted(settings: Settings, database_url: str, tmp_path: Path) -> None:
    """SAILPLANE_METRICS_ENABLED=0 (the benchmark's baseline): requests answered, none counted."""
    live = LiveServer(replace(settings, database_url=fresh_database(database_url, tmp_path),
                              data_dir=tmp_path / "data", compute_enabled=False, operations_enabled=False,
                              metrics_enabled=False))
    live.start()
    try:
        owner = signup(f"{live.url}/api/v1")
        create_team(owner, "Uncounted")
        after = scrape(live.url)
        assert requests(after, "createTeam", "POST", 201) == 0
        assert not [key for key, v in after.items() if key[0] == "sailplane_http_requests_total" and v > 0]
    finally:
        live.stop()


def test_an_actor_token_is_not_a_metrics_token(own_server: LiveServer) -> None:
    """A user's API token gives nothing more: from outside loopback, /metrics stays refused."""
    owner: Actor = signup(f"{own_server.url}/api/v1")
    r = httpx.get(f"{own_server.url}/metrics", headers={**owner.headers(), "X-Forwarded-For": "198.51.100.2"})
    assert r.status_code == 403


def test_the_openapi_document_publishes_metrics(own_server: LiveServer) -> None:
    doc = openapi_document(f"{own_server.url}/api/v1")
    operation = doc["paths"]["/metrics"]["get"]
    assert operation["operationId"] == "metrics"
    assert "text/plain" in operation["responses"]["200"]["content"]
    for status in ("401", "403"):
        assert operation["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}
