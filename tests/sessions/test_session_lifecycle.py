"""pending → active → idle → closed, max duration, failures, relaunch and shared instances."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from sqlalchemy import update

from sailplane.workloads.models import InteractiveSession, WorkloadConfig
from tests.sessions.helpers import (
    close,
    describe,
    issue_token,
    open_session,
    org_with_team,
    sail_pids,
    spark_session,
    spark_url,
    wait_for_status,
    wait_until,
)
from tests.support.actors import assert_error
from tests.support.server import LiveServer
from tests.support.world import add_to_team, create_member

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


def test_idle_after_the_idle_timeout_then_closed(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team, config={"idleTimeoutSeconds": 1, "idleCloseDelaySeconds": 2})
    sid = session["id"]
    assert session["config"] == {"idleTimeoutSeconds": 1, "idleCloseDelaySeconds": 2, "maxDurationSeconds": 28800}
    token = issue_token(owner, sid)
    with spark_session(spark_url(session, token)) as spark:
        assert spark.range(3).count() == 3
        assert describe(owner, sid)["status"] == "active"
        idle = wait_for_status(owner, sid, "idle", timeout=10)
        assert idle["idleSince"] is not None and idle["lastActivityAt"] < idle["idleSince"]
        # A call while idle makes the session active again.
        assert spark.sql("SELECT 5").collect()[0][0] == 5
        again = describe(owner, sid)
        assert again["status"] == "active" and again["idleSince"] is None
        closed = wait_for_status(owner, sid, "closed", timeout=15)
    assert closed["terminationReason"] == "idle_timeout" and closed["closedAt"] is not None
    wait_until(lambda: session["workloadId"] not in sail_pids(compute_server))
    events = owner.get("/org/audit-events", params={"resourceId": sid}).json()["items"]
    assert any(e["action"] == "session.close" and e["actorType"] == "system" for e in events)


def test_closed_at_max_duration_even_while_used(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team, config={"maxDurationSeconds": 2})
    sid = session["id"]
    token = issue_token(owner, sid)
    with spark_session(spark_url(session, token)) as spark:
        deadline = time.monotonic() + 15
        while describe(owner, sid)["status"] != "closed":
            assert time.monotonic() < deadline, "not closed at its max duration"
            with contextlib.suppress(Exception):  # refused once closed; the loop re-checks
                spark.sql("SELECT 1").collect()
            time.sleep(0.1)
    closed = describe(owner, sid)
    assert closed["terminationReason"] == "max_duration"
    assert closed["closedAt"] >= closed["timeoutAt"]
    wait_until(lambda: session["workloadId"] not in sail_pids(compute_server))


def test_failed_when_sail_cannot_start(compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    bad_env = {"config": {"sail": {"extraEnv": {"SAIL_EXECUTION__BATCH_SIZE": "not-a-number"}}}}
    session = open_session(owner, team, workloadConfig=bad_env)
    failed = wait_for_status(owner, session["id"], "failed", timeout=30)
    assert failed["terminationReason"] == "instance_start_failed"
    assert "could not start" in failed["statusMessage"] and "BATCH_SIZE" in failed["statusMessage"]
    workloads = owner.get("/workloads/sessions").json()["included"]["workloads"]
    assert workloads[0]["infraStatus"] == "failed" and workloads[0]["statusMessage"]


def test_failed_when_no_backend_serves_the_cluster(compute_api: str, compute_server: LiveServer) -> None:
    """A record naming a cluster no backend of this node serves fails its session with a clear message;
    the controller keeps going (the next session on the LOCAL cluster starts)."""
    owner, team = org_with_team(compute_api)
    r = owner.post("/workloads/compute-configs", json={"name": "elsewhere", "teamId": team})
    assert r.status_code == 201, r.text
    config_id = r.json()["id"]
    with compute_server.app.state.db.session() as db:  # no API makes such a cluster yet: name one in the row
        db.execute(update(WorkloadConfig).where(WorkloadConfig.id == config_id).values(cluster_id="CLUSTER_ELSEWHERE"))
        db.commit()
    session = open_session(owner, team, workloadConfigId=config_id)
    failed = wait_for_status(owner, session["id"], "failed", timeout=30)
    assert failed["terminationReason"] == "instance_start_failed"
    assert "could not start" in failed["statusMessage"] and "CLUSTER_ELSEWHERE" in failed["statusMessage"]
    fine = open_session(owner, team)
    with spark_session(spark_url(fine, issue_token(owner, fine["id"]))) as spark:
        assert spark.sql("SELECT 1").collect()[0][0] == 1
    close(owner, fine["id"])


def test_failed_when_the_instance_dies(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team)
    with spark_session(spark_url(session, issue_token(owner, session["id"]))) as spark:
        assert spark.sql("SELECT 1").collect()[0][0] == 1
    pid = sail_pids(compute_server)[session["workloadId"]]
    os.kill(pid, signal.SIGKILL)
    failed = wait_for_status(owner, session["id"], "failed", timeout=15)
    assert failed["terminationReason"] == "instance_failed"
    assert "stopped unexpectedly" in failed["statusMessage"]
    wait_until(lambda: session["workloadId"] not in sail_pids(compute_server))


def test_relaunch(compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    admin = create_member(owner)
    add_to_team(owner, team, admin, "TEAMADMIN")
    original = open_session(owner, team, name="daily", config={"idleTimeoutSeconds": 600},
                            metadata={"k": "v"})
    sid = original["id"]
    assert_error(owner.post(f"/workloads/sessions/{sid}/relaunch"), 409, "session_not_terminal")
    close(owner, sid)
    assert_error(admin.post(f"/workloads/sessions/{sid}/relaunch"), 403)  # sees it, does not own it
    outsider, _ = org_with_team(compute_api)
    assert_error(outsider.post(f"/workloads/sessions/{sid}/relaunch"), 404)
    r = owner.post(f"/workloads/sessions/{sid}/relaunch")
    assert r.status_code == 201, r.text
    relaunched = r.json()
    assert relaunched["id"] != sid and relaunched["status"] == "pending"
    assert relaunched["workloadId"] != original["workloadId"]
    for field in ("name", "teamId", "memberId", "config", "metadata", "endpointType"):
        assert relaunched[field] == original[field], field
    assert describe(owner, sid)["status"] == "closed"  # the original is not touched
    with spark_session(spark_url(relaunched, issue_token(owner, relaunched["id"]))) as spark:
        assert spark.range(4).count() == 4
    close(owner, relaunched["id"])


def test_allow_shared_reuses_an_instance_within_its_limit(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    colleague = create_member(owner)
    add_to_team(owner, team, colleague)
    r = owner.post("/workloads/compute-configs", json={"name": "shared", "teamId": team,
                                                       "endpointLimits": {"spark_connect": 2}})
    assert r.status_code == 201, r.text
    config_id = r.json()["id"]
    first = open_session(owner, workloadConfigId=config_id, allowShared=True)
    second = open_session(colleague, workloadConfigId=config_id, allowShared=True)
    third = open_session(owner, workloadConfigId=config_id, allowShared=True)  # over the limit of 2
    private = open_session(owner, workloadConfigId=config_id)  # not shared
    assert first["teamId"] == team and first["name"] == "shared"
    assert second["workloadId"] == first["workloadId"]
    assert len({first["workloadId"], third["workloadId"], private["workloadId"]}) == 3
    shared_instance = first["workloadId"]
    for actor, session in ((owner, first), (colleague, second)):
        with spark_session(spark_url(session, issue_token(actor, session["id"]))) as spark:
            assert spark.sql("SELECT 7").collect()[0][0] == 7
    close(owner, first["id"])
    time.sleep(0.5)  # a few controller ticks: the instance still serves the colleague
    assert shared_instance in sail_pids(compute_server)
    with spark_session(spark_url(second, issue_token(colleague, second["id"]))) as spark:
        assert spark.sql("SELECT 8").collect()[0][0] == 8
    for actor, session in ((colleague, second), (owner, third), (owner, private)):
        close(actor, session["id"])
    wait_until(lambda: not {s["workloadId"] for s in (first, third, private)} & set(sail_pids(compute_server)))


def test_deleting_the_team_stops_its_sessions_compute(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team)
    token = issue_token(owner, session["id"])
    with spark_session(spark_url(session, token)) as spark:
        assert spark.sql("SELECT 1").collect()[0][0] == 1
    assert owner.delete(f"/org/teams/{team}").status_code == 200
    wait_until(lambda: session["workloadId"] not in sail_pids(compute_server))
    assert_error(owner.get(f"/workloads/sessions/{session['id']}"), 404)


def test_a_long_call_keeps_the_session_active(compute_api: str, compute_server: LiveServer) -> None:
    """Idleness is time without calls in flight: a query running longer than idleTimeoutSeconds is use."""
    import threading

    from pyspark.sql.functions import udf

    owner, team = org_with_team(compute_api)
    session = open_session(owner, team, config={"idleTimeoutSeconds": 1, "idleCloseDelaySeconds": 30})
    sid = session["id"]
    token = issue_token(owner, sid)
    with spark_session(spark_url(session, token)) as spark:

        @udf("long")
        def slow(x: int) -> int:
            import time as _time

            _time.sleep(1.0)
            return x

        result: list[int] = []
        query = spark.range(5).repartition(1).select(slow("id").alias("v"))
        worker = threading.Thread(target=lambda: result.extend(r.v for r in query.collect()))
        worker.start()
        seen = []
        time.sleep(0.5)
        while worker.is_alive():
            seen.append(describe(owner, sid)["status"])
            time.sleep(0.3)
        worker.join()
        assert sorted(result) == [0, 1, 2, 3, 4]
        assert len(seen) >= 8, "the query should outlast the idle timeout several times over"
        assert set(seen) == {"active"}, seen
        idle = wait_for_status(owner, sid, "idle", timeout=10)
        assert idle["lastActivityAt"] < idle["idleSince"]
    close(owner, sid)


def test_a_pending_session_says_when_its_sail_server_is_ready(compute_api: str, compute_server: LiveServer) -> None:
    """The status stays `pending` until the first call (the seeded values); `statusMessage` tells a user
    polling for readiness whether the Sail server is still starting or ready, in describe and list alike."""
    owner, team = org_with_team(compute_api)
    r = owner.post("/workloads/compute-configs", json={"name": "ready-check", "teamId": team,
                                                       "endpointLimits": {"spark_connect": 2}})
    assert r.status_code == 201, r.text
    config_id = r.json()["id"]
    first = open_session(owner, workloadConfigId=config_id, allowShared=True)
    assert first["status"] == "pending" and first["statusMessage"].startswith("Starting")
    ready = wait_until(lambda: (s := describe(owner, first["id"]))["statusMessage"] != first["statusMessage"] and s,
                       timeout=60)
    assert ready["status"] == "pending" and "ready" in ready["statusMessage"]
    listed = owner.get("/workloads/sessions").json()["included"]["sessions"]
    assert [s["statusMessage"] for s in listed if s["id"] == first["id"]] == [ready["statusMessage"]]
    # A session that joins the running server is ready at once.
    second = open_session(owner, workloadConfigId=config_id, allowShared=True)
    assert second["workloadId"] == first["workloadId"]
    assert second["status"] == "pending" and second["statusMessage"] == ready["statusMessage"]
    # Once used, the session is active and the word about readiness is gone (from memory and the database).
    with spark_session(spark_url(first, issue_token(owner, first["id"]))) as spark:
        assert spark.sql("SELECT 3").collect()[0][0] == 3
    used = describe(owner, first["id"])
    assert used["status"] == "active" and used["statusMessage"] is None
    def stored() -> tuple[str, str | None]:
        with compute_server.app.state.db.session() as db:
            row = db.get(InteractiveSession, first["id"])
            return row.status, row.status_message

    assert wait_until(lambda: stored() == ("active", None))
    assert describe(owner, second["id"])["statusMessage"] == ready["statusMessage"]
    for session in (first, second):
        close(owner, session["id"])
    wait_until(lambda: first["workloadId"] not in sail_pids(compute_server))
