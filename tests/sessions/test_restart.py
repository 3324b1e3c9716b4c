"""Restarting the server with open sessions: running instances are adopted, vanished ones are marked
and their sessions failed, and Sail processes no record owns are stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import grpc
import pytest
from pyspark.errors.exceptions.connect import SparkConnectGrpcException

from sailplane.compute.backend import InstanceSpec
from sailplane.compute.local import LocalSailBackend
from sailplane.compute.nodes import NodeLock
from sailplane.workloads.controller import DOWN_NODE_SWEEP_SECONDS
from tests.sessions.conftest import assert_no_sail_left, compute_settings
from tests.sessions.helpers import (
    close,
    describe,
    grpc_code,
    issue_token,
    open_session,
    org_with_team,
    sail_pids,
    spark_session,
    spark_url,
    wait_until,
)
from tests.support.actors import Actor
from tests.support.server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


def _use(actor: Actor, session: dict[str, object], token: str) -> int:
    with spark_session(spark_url(describe(actor, str(session["id"])), token)) as spark:
        return int(spark.sql("SELECT 41 + 1").collect()[0][0])


def test_restart_adopts_running_instances_and_cleans_up_the_rest(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "node"
    settings = compute_settings(data_dir, database_url)
    first = LiveServer(settings)
    first.start()
    stray = LocalSailBackend(data_dir)
    try:
        api = f"{first.url}/api/v1"
        owner, team = org_with_team(api)
        kept, lost = open_session(owner, team), open_session(owner, team)
        kept_token, lost_token = issue_token(owner, kept["id"]), issue_token(owner, lost["id"])
        assert _use(owner, kept, kept_token) == 42
        assert _use(owner, lost, lost_token) == 42
    finally:
        first.stop()

    # While the server is down: one instance dies, and a Sail process appears that no record owns. The
    # node's lock is held meanwhile, as while a server of it starts, so that other nodes of this machine
    # leave its processes alone: this is about what the node's own start does with them.
    holding = NodeLock(data_dir)
    holding.acquire()
    running = sail_pids(first)
    assert {kept["workloadId"], lost["workloadId"]} <= set(running)
    os.kill(running[lost["workloadId"]], signal.SIGKILL)
    orphan = asyncio.run(stray.start(InstanceSpec(instance_id="ORPHAN1")))

    second = LiveServer(settings)
    second.start()
    holding.release()
    try:
        owner.base_url = f"{second.url}/api/v1"
        assert "ORPHAN1" not in sail_pids(second)
        assert set(sail_pids(second)) == {kept["workloadId"]}
        # The adopted session keeps working, with the token issued before the restart.
        assert describe(owner, kept["id"])["status"] == "active"
        assert _use(owner, kept, kept_token) == 42
        failed = describe(owner, lost["id"])
        assert failed["status"] == "failed" and failed["terminationReason"] == "instance_lost"
        assert "gone" in failed["statusMessage"]
        listed = owner.get("/workloads/sessions").json()
        workloads = {w["id"]: w["infraStatus"] for w in listed["included"]["workloads"]}
        assert workloads == {kept["workloadId"]: "running", lost["workloadId"]: "failed"}
        # The failed session's token is refused with the reason; no new token is issued for it.
        with pytest.raises(SparkConnectGrpcException) as info, \
                spark_session(spark_url(describe(owner, lost["id"]), lost_token)) as spark:
            spark.sql("SELECT 1").collect()
        assert grpc_code(info.value) == grpc.StatusCode.UNAUTHENTICATED
        assert "has failed" in str(info.value)
        assert owner.post(f"/workloads/sessions/{lost['id']}/token", json={}).status_code == 409
        close(owner, kept["id"])
        wait_until(lambda: kept["workloadId"] not in sail_pids(second))
    finally:
        second.stop()
        asyncio.run(stray.stop(orphan))  # reaps our own (already stopped) child
        assert_no_sail_left(data_dir)



def test_sessions_closed_while_their_node_is_down(tmp_path: Path, database_url: str, compute_api: str,
                                                  compute_server: LiveServer) -> None:
    """A graceful stop leaves the open sessions' Sail servers running, for the next start to adopt. A session
    closed meanwhile through another node has its Sail server stopped by a node of this machine that is up
    (it no longer waits for its own node to come back); one that reaches its maximum duration while its node
    is down is closed, and its server stopped, when the node is back; the one still open is adopted."""
    data_dir = tmp_path / "node"
    settings = compute_settings(data_dir, database_url)
    first = LiveServer(settings)
    first.start()
    try:
        owner, team = org_with_team(f"{first.url}/api/v1")
        closed = open_session(owner, team)
        expiring = open_session(owner, team, config={"maxDurationSeconds": 8})
        kept = open_session(owner, team)
        tokens = {s["id"]: issue_token(owner, s["id"]) for s in (closed, expiring, kept)}
        for session in (closed, expiring, kept):
            assert _use(owner, session, tokens[session["id"]]) == 42
    finally:
        first.stop()
    workloads = {s["workloadId"] for s in (closed, expiring, kept)}
    assert workloads <= set(sail_pids(first)), "a graceful stop leaves the sessions' Sail servers running"

    # While the node is down, the session is closed through another node of this machine (the shared
    # compute server), which stops its Sail server; the open ones are left for their node.
    owner.base_url = compute_api
    close(owner, closed["id"])
    wait_until(lambda: closed["workloadId"] not in sail_pids(first), timeout=15)
    # The record follows the process (the sweep stops it first, then says so).
    wait_until(lambda: _infra_status(owner, closed["workloadId"]) == "stopped", timeout=10)
    time.sleep(max(0.0, 8.5 - (time.time() - _created(expiring))))  # past the other's maximum duration
    assert {expiring["workloadId"], kept["workloadId"]} <= set(sail_pids(first))

    second = LiveServer(settings)
    second.start()
    try:
        owner.base_url = f"{second.url}/api/v1"
        wait_until(lambda: set(sail_pids(second)) == {kept["workloadId"]}, timeout=20)
        assert describe(owner, expiring["id"])["terminationReason"] == "max_duration"
        assert describe(owner, closed["id"])["terminationReason"] == "closed_by_user"
        listed = owner.get("/workloads/sessions").json()["included"]["workloads"]
        states = {w["id"]: w["infraStatus"] for w in listed}
        assert states[closed["workloadId"]] == states[expiring["workloadId"]] == "stopped"
        assert states[kept["workloadId"]] == "running"
        assert _use(owner, kept, tokens[kept["id"]]) == 42
        close(owner, kept["id"])
        wait_until(lambda: not sail_pids(second))
    finally:
        second.stop()
        assert_no_sail_left(data_dir)


def test_another_deployments_node_leaves_our_sail_servers_alone(tmp_path: Path, compute_server: LiveServer) -> None:
    """Two installations on one machine, each with its own database (the shared compute server is the
    other one here): when our node stops, the other's sweep of down nodes must not stop the Sail servers of
    our open sessions, which it knows nothing about; our node adopts them when it is back."""
    data_dir = tmp_path / "node"
    settings = compute_settings(data_dir, f"sqlite:///{tmp_path / 'own.db'}")
    first = LiveServer(settings)
    first.start()
    try:
        owner, team = org_with_team(f"{first.url}/api/v1")
        session = open_session(owner, team)
        token = issue_token(owner, session["id"])
        assert _use(owner, session, token) == 42
    finally:
        first.stop()
    time.sleep(3 * DOWN_NODE_SWEEP_SECONDS + 1)  # several sweeps of the other deployment's node
    assert session["workloadId"] in sail_pids(first), "another installation stopped our session's Sail server"

    second = LiveServer(settings)
    second.start()
    try:
        owner.base_url = f"{second.url}/api/v1"
        assert _use(owner, session, token) == 42
        close(owner, session["id"])
        wait_until(lambda: not sail_pids(second))
    finally:
        second.stop()
        assert_no_sail_left(data_dir)


def _infra_status(owner: Actor, workload_id: str) -> str:
    listed = owner.get("/workloads/sessions").json()["included"]["workloads"]
    return str({w["id"]: w["infraStatus"] for w in listed}[workload_id])


def _created(session: dict[str, object]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(session["createdAt"]).replace("Z", "+00:00")).timestamp()
