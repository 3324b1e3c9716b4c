"""Every published operation, fuzzed by schemathesis against a real server: no answer may be a server error,
or disagree with the OpenAPI document in status code, content type, headers or body schema; methods an
operation's path does not serve answer 405 with a matching `Allow`.

- A server of its own (own database and data directory), with compute disabled: createSession and
  relaunchSession then answer their documented 503 `compute_unavailable` (no Sail server starts), and no
  job run is dispatched. Every operation is included. The 5xx answers the document promises and this setup
  provokes on purpose (503 compute/DNS unavailable, 502 from identity providers at a closed port) are
  expected; a 500 never is.
- Each operation gets a fresh organization whose Owner makes every request (bearer token and
  `LakeSail-Organization-Id`), with a team, a job and a held run, a query, a catalog, a workload config, a
  service account and API key, an identity provider: generated path parameters and body references are
  replaced by those real IDs in half of the cases, so the fuzzing reaches past "not found". So one operation's
  destructive examples (logout, a reset password) cannot change what another operation sees.
- Deterministic and bounded: schemathesis' coverage cases (boundary values, missing and unexpected
  parameters and methods) plus EXAMPLES generated ones per operation, positive and negative; Hypothesis
  derandomized (its seed comes from the test), no example database, no shrinking. About 10,000 cases and
  3 minutes per database on two cores.
- Nothing leaves the machine: every URL a request could make the server fetch (identity provider issuers)
  is rewritten to a closed loopback port, and DNS checks go to a closed loopback port too.
"""

from __future__ import annotations

import gc
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (  # type: ignore[attr-defined]
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.conftest import make_settings
from tests.support.actors import Actor, signup, unique_email
from tests.support.databases import fresh_database
from tests.support.server import LiveServer

EXAMPLES = int(os.environ.get("SAILPLANE_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, unsupported_method, allow_header_conformance]
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once
URL_FIELDS = ("issuer", "providerUrl")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("fuzz-node")
    settings_ = make_settings(data_dir, fresh_database(database_url, tmp_path_factory.mktemp("fuzz-db")), None,
                              compute_enabled=False, dns_nameservers=(("127.0.0.1", 9),),
                              dns_timeout_seconds=0.2)
    live = LiveServer(settings_)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@dataclass
class World:
    """One organization and what it holds; `ids` maps path parameter and body field names to real values."""

    owner: Actor
    ids: dict[str, str] = field(default_factory=dict)


CURRENT: list[World] = []


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


class _KeptAlive:
    """`owner.post(...)` over one kept-alive connection: thousands of fresh loopback connections would hold as
    many ephemeral ports in TIME_WAIT, where a port another test picked earlier (tests.conftest.dns_port) may be."""

    def __init__(self, client: httpx.Client, actor: Actor) -> None:
        self.client, self.headers = client, actor.headers()

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path.lstrip("/"), headers=self.headers, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.put(path.lstrip("/"), headers=self.headers, **kwargs)


def build_world(client: httpx.Client) -> World:
    actor = signup(str(client.base_url).rstrip("/"))
    owner = _KeptAlive(client, actor)
    team = _ok(owner.post("/org/teams", json={"name": "fuzz"}))["team"]["id"]
    job = _ok(owner.post("/workloads/jobs", json={
        "jobKey": f"fuzz-{unique_email().split('@')[0]}", "clusterId": "LOCAL", "teamIds": [team],
        "config": {"sql": {"source": "SELECT 1"}}}))["id"]
    run = _ok(owner.post(f"/workloads/jobs/{job}/runs", json={"hold": True}))["id"]
    query = _ok(owner.post("/workloads/queries", json={"name": "q", "sql": "SELECT 1", "teamIds": [team]}))
    catalog = _ok(owner.post("/data/catalogs", json={
        "name": "c", "provider": "iceberg_rest", "teamIds": [team],
        "providerConfig": {"uri": "https://catalog.example.com"}}))
    config = _ok(owner.post("/workloads/compute-configs", json={"name": "w", "teamId": team}))["id"]
    notebook = _ok(owner.post("/workloads/notebooks", json={"workloadConfigId": config, "name": "nb",
                                                            "teamIds": [team]}))["item"]["notebookId"]
    _ok(owner.put(f"/workloads/notebooks/{notebook}/source", content=b"import marimo\n"))
    revision = _ok(owner.client.get(f"workloads/notebooks/{notebook}/source/revisions",
                                    headers=owner.headers))["items"][0]["id"]
    account = _ok(owner.post("/org/service-accounts", json={"name": "sa"}))["id"]
    key = _ok(owner.post(f"/org/service-accounts/{account}/api-keys", json={"name": "k"}))["id"]
    idp = _ok(owner.post("/auth/idps", json={"name": "idp", "issuer": CLOSED, "clientId": "client",
                                              "emailDomains": ["fuzz.example.com"]}))["id"]
    channel = _ok(owner.post("/notifications/channels", json={"type": "email", "name": "n", "config": {}}))["id"]
    rule = _ok(owner.post("/notifications/rules", json={"name": "r", "eventTypes": ["job_run.failed"],
                                                        "channelIds": [channel], "scopeType": "organization"}))["id"]
    ids = {
        "team": team, "teamId": team, "channel": channel, "channelId": channel, "channelIds": channel,
        "rule": rule, "ruleId": rule, "job": job, "jobRun": run, "query": query["id"],
        "queryId": query["id"], "catalog": catalog["id"],
        "catalogId": catalog["id"], "workloadConfig": config, "workloadConfigId": config, "notebook": notebook,
        "revision": revision,
        "serviceAccount": account, "apiKey": key, "idp": idp, "member": actor.member_id or "",
        "memberId": actor.member_id or "", "user": actor.user_id or "", "principal": actor.user_id or "",
        "cluster": "LOCAL", "clusterId": "LOCAL", "role": "ADMIN", "jobVersionNumber": "1",
        "domain": "fuzz.example.com", "defaultOrganizationId": actor.org_id or "",
    }
    return World(actor, ids)


def _published_schema() -> Any:
    """The document the server publishes, built from the app itself (the test server serves the same one), so
    that pytest can make one test per operation when it collects this module."""
    import tempfile

    from sailplane.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(make_settings(Path(tmp), f"sqlite:///{tmp}/schema.db", None, compute_enabled=False),
                         migrate=False)
        document = app.openapi()
        app.state.db.dispose()
    config = schemathesis.Config.from_dict({
        "generation": {"mode": "all"},
        # 5xx answers the document promises and this setup provokes on purpose: 503 compute_unavailable (compute
        # is off), dns_unavailable, 502 idp_unavailable (issuers point at a closed port). Never a 500.
        "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "502", "503"]}},
    })
    loaded = schemathesis.openapi.from_dict(document, config=config)
    only = [name for name in os.environ.get("SAILPLANE_SCHEMATHESIS_OPERATIONS", "").split(",") if name]
    return loaded.include(operation_id=only) if only else loaded  # for a developer's quick look at a few


schema = _published_schema()


def _prepare(case: Any, world: World) -> dict[str, str]:
    """Points half of the cases at real resources (path parameters and body references), most at the caller's
    organization, and every URL the server could fetch at a closed loopback port; returns the headers to add.
    Decided by a checksum of the case, so the run stays deterministic in every phase (generated, coverage and
    schema examples alike)."""
    key = zlib.crc32(repr((case.operation.label, case.path_parameters, case.query, case.body)).encode())
    real = key % 2 == 0
    if real and case.path_parameters:
        case.path_parameters = {k: world.ids.get(k, v) for k, v in case.path_parameters.items()}
    if isinstance(case.body, dict):
        body = dict(case.body)
        for name in URL_FIELDS:  # never let the server fetch a generated URL
            if name in body:
                body[name] = CLOSED
        if real:
            for name, value in body.items():
                if name in world.ids:
                    body[name] = [world.ids[name]] if isinstance(value, list) else world.ids[name]
        case.body = body
    headers = {"Authorization": f"Bearer {world.owner.token}"}
    generated = dict(case.headers or {})
    if "LakeSail-Organization-Id" not in generated or key % 3 != 0:
        headers["LakeSail-Organization-Id"] = world.owner.org_id or ""
    return headers


CASES: dict[str, int] = {}
SECONDS: dict[str, float] = {}
STATUSES: dict[int, int] = {}


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_main_thread() -> Iterator[None]:
    """Overrides the suite's collection after every test: after every operation here it cost more than the
    operation's own requests. Every 25 operations is enough to keep memory flat."""
    yield
    if len(CASES) % 25 == 0:
        gc.collect()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    started = time.monotonic()
    yield
    slowest = sorted(SECONDS.items(), key=lambda kv: -kv[1])[:5]
    print(f"\nschemathesis: {len(CASES)} operations, {sum(CASES.values())} cases, "
          f"{time.monotonic() - started:.0f} s; statuses: {dict(sorted(STATUSES.items()))}; slowest: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in slowest))


@pytest.fixture(scope="module")
def client(fuzz_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{fuzz_server.url}/api/v1/", timeout=60) as kept:
        yield kept


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """Schemathesis' requests, over kept-alive connections too (see _KeptAlive)."""
    with requests.Session() as kept:
        kept.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # each case on its own, as sent
        yield kept


@pytest.fixture
def world(client: httpx.Client) -> Iterator[World]:
    built = build_world(client)
    CURRENT[:] = [built]
    try:
        yield built
    finally:
        CURRENT.clear()


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case: Any, world: World, fuzz_server: LiveServer,
                                  session: requests.Session) -> None:
    headers = _prepare(case, world)
    label = case.operation.label
    started = time.monotonic()
    try:
        response = case.call_and_validate(base_url=fuzz_server.url, session=session, headers=headers, checks=CHECKS,
                                          timeout=30)
        STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
    finally:
        CASES[label] = CASES.get(label, 0) + 1
        SECONDS[label] = SECONDS.get(label, 0.0) + time.monotonic() - started
