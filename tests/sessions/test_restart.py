"""Restarting the server with open sessions: running instances are adopted, vanished ones are marked
and their sessions failed, and Sail processes no record owns are stopped."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import pytest
from pyspark.errors.exceptions.connect import SparkConnectGrpcException

from sailplane.compute.backend import InstanceSpec
from sailplane.compute.local import LocalSailBackend
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

    # While the server is down: one instance dies, and a Sail process appears that no record owns.
    running = sail_pids(first)
    assert {kept["workloadId"], lost["workloadId"]} <= set(running)
    os.kill(running[lost["workloadId"]], signal.SIGKILL)
    orphan = asyncio.run(stray.start(InstanceSpec(instance_id="ORPHAN1")))

    second = LiveServer(settings)
    second.start()
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

