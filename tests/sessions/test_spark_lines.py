"""Every PySpark line Sail supports, through the gateway: a client of each line creates a DataFrame from
local rows, runs a pandas UDF and pulls Arrow data, on a default session (which answers as the newest
line) and on a session whose workload config picks the client's line (which answers as that line)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sailplane.compute.environments import DEFAULT_LINE, LINES, SparkEnvironments
from tests.sessions.helpers import close, issue_token, open_session, org_with_team, sail_pids
from tests.support.actors import Actor, assert_error
from tests.support.clients import assert_probe_ok, probe_line
from tests.support.server import LiveServer, openapi_document
from tests.support.waiting import wait_until


def client(line: str) -> str:
    """The Python of a client of `line`: its pinned environment (pyspark, pandas<3, pyarrow)."""
    env = SparkEnvironments().env(line)
    assert env.installed, f"{env.path} is not installed: run scripts/bootstrap.sh dev"
    return env.python


def url(owner: Actor, session: dict[str, Any]) -> str:
    # Sailplane's own header: PySpark 3.5 turns TLS on for `;token=`, and this gateway is plaintext.
    return f"{session['connectionInfo']['grpcEndpoint']}/;x-sailplane-token={issue_token(owner, session['id'])}"


@pytest.fixture(scope="module")
def owner(compute_api: str) -> tuple[Actor, str]:
    return org_with_team(compute_api, "spark-lines")


def _closed(owner: Actor, session: dict[str, Any], server: LiveServer) -> None:
    close(owner, session["id"])
    wait_until(lambda: session["workloadId"] not in sail_pids(server), timeout=30)


@pytest.fixture(scope="module")
def default_session(owner: tuple[Actor, str], compute_server: LiveServer) -> Iterator[dict[str, Any]]:
    actor, team = owner
    session = open_session(actor, team)  # no workload config at all
    yield session
    _closed(actor, session, compute_server)


@pytest.mark.parametrize("line", list(LINES))
def test_a_client_of_each_line_on_a_default_session(owner: tuple[Actor, str], default_session: dict[str, Any],
                                                   line: str) -> None:
    found = probe_line(client(line), url(owner[0], default_session))
    assert_probe_ok(found, client_line=line, server_line=DEFAULT_LINE)


@pytest.mark.parametrize("line", list(LINES))
def test_a_client_of_each_line_on_a_session_of_its_line(owner: tuple[Actor, str], compute_server: LiveServer,
                                                        line: str) -> None:
    actor, team = owner
    r = actor.post("/workloads/compute-configs", json={
        "name": f"spark-{line}", "teamId": team, "config": {"sail": {"sparkVersion": line}}})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["sail"]["sparkVersion"] == line
    session = open_session(actor, team, workloadConfigId=r.json()["id"])
    try:
        assert_probe_ok(probe_line(client(line), url(actor, session)), client_line=line, server_line=line)
    finally:
        _closed(actor, session, compute_server)


def test_an_inline_config_picks_a_line_too(owner: tuple[Actor, str], compute_server: LiveServer) -> None:
    actor, team = owner
    session = open_session(actor, team, workloadConfig={"config": {"sail": {"sparkVersion": "4.1"}}})
    try:
        assert_probe_ok(probe_line(client("4.1"), url(actor, session)), client_line="4.1", server_line="4.1")
    finally:
        _closed(actor, session, compute_server)


@pytest.mark.parametrize("value", ["3.4", "4.2.0", "4", "latest", 4.2, None])
def test_spark_version_must_be_a_line_this_server_has(owner: tuple[Actor, str], value: Any) -> None:
    actor, team = owner
    r = actor.post("/workloads/compute-configs", json={
        "name": f"bad-{value}", "teamId": team, "config": {"sail": {"sparkVersion": value}}})
    if value is None:  # null is the same as leaving it out: the default line
        assert r.status_code == 201, r.text
        assert "sparkVersion" not in r.json()["config"]["sail"]
        return
    err = assert_error(r, 422)
    assert "config.sail.sparkVersion" in err["details"]["fieldErrors"], err
    r = actor.post("/workloads/sessions", json={
        "teamId": team, "workloadConfig": {"config": {"sail": {"sparkVersion": value}}}})
    err = assert_error(r, 422)
    assert "workloadConfig.config.sail.sparkVersion" in err["details"]["fieldErrors"], err


def test_the_openapi_lists_the_lines(compute_api: str) -> None:

    spec = openapi_document(compute_api)
    found = [schema for name, schema in spec["components"]["schemas"].items()
             if "sparkVersion" in schema.get("properties", {})]
    assert len(found) >= 2, "the workload config's sail and the job's lakesail"
    for schema in found:
        prop = schema["properties"]["sparkVersion"]
        options = prop.get("anyOf", [prop])
        enums = [o["enum"] for o in options if "enum" in o]
        assert enums == [list(LINES)], prop
        assert DEFAULT_LINE in prop["description"]
