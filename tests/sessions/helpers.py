"""Shortcuts for session tests: organizations with a team, sessions, tokens and PySpark clients."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import grpc
from pyspark.sql import SparkSession

from sailplane.compute.local import LocalSailBackend
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from tests.support.world import create_team


def org_with_team(api: str, team_name: str = "analytics") -> tuple[Actor, str]:
    owner = signup(api)
    return owner, create_team(owner, team_name)


def open_session(actor: Actor, team_id: str | None = None, **body: Any) -> dict[str, Any]:
    if team_id is not None:
        body.setdefault("teamId", team_id)
    r = actor.post("/workloads/sessions", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def issue_token(actor: Actor, session_id: str, **body: Any) -> str:
    r = actor.post(f"/workloads/sessions/{session_id}/token", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def describe(actor: Actor, session_id: str) -> dict[str, Any]:
    r = actor.get(f"/workloads/sessions/{session_id}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def close(actor: Actor, session_id: str) -> None:
    r = actor.delete(f"/workloads/sessions/{session_id}")
    assert r.status_code == 200, r.text


def spark_url(session: dict[str, Any], token: str, extra: str = "") -> str:
    # grpcEndpoint is sc://localhost:PORT; without use_ssl PySpark uses local (loopback) credentials.
    return f"{session['connectionInfo']['grpcEndpoint']}/;token={token}{extra}"


@contextlib.contextmanager
def spark_session(url: str) -> Iterator[SparkSession]:
    spark = SparkSession.builder.remote(url).create()
    try:
        yield spark
    finally:
        with contextlib.suppress(Exception):
            spark.stop()


def grpc_code(exc: BaseException) -> grpc.StatusCode | None:
    getter = getattr(exc, "getGrpcStatusCode", None)
    return getter() if getter else None



def wait_for_status(actor: Actor, session_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (s := describe(actor, session_id))["status"] == status and s, timeout=timeout)
    return found


def sail_pids(server: LiveServer) -> dict[str, int]:
    """The Sail processes the server's compute node is running, by compute instance (workload) ID."""
    backend: LocalSailBackend = LocalSailBackend(server.settings.data_dir)
    return dict(backend.scan())
