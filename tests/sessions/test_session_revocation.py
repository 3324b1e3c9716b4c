"""Access follows membership: when a member, a login, a user or an API key loses access, their session
tokens are refused by the gateway within the stated bound, new tokens are refused, and the sessions
they may no longer use are closed (their Sail servers stopped).

Each test warms the gateway's access cache with real queries through a stock PySpark client first, so
a refusal cannot come from an empty cache; then it removes the access through the API and polls the
same client until the gateway refuses, timing the refusal against the bound
(`SAILPLANE_GATEWAY_ACCESS_CACHE_SECONDS`, 5 s by default) plus one second for the poll and the call itself.
"""

from __future__ import annotations

import re
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql import SparkSession
from pyspark.sql.connect.client.retries import DefaultPolicy
from sqlalchemy import create_engine, text

from tests.sessions.helpers import (
    describe,
    grpc_code,
    issue_token,
    open_session,
    org_with_team,
    sail_pids,
    spark_session,
    spark_url,
    wait_for_status,
    wait_until,
)
from tests.support.actors import Actor, assert_error, login, signup
from tests.support.server import LiveServer
from tests.support.world import add_to_team, create_member, create_service_account, create_team

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

POLL_SLACK = 1.0  # the poll's own interval and one query's latency, on top of the bound
REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def _bound(server: LiveServer) -> float:
    return server.settings.gateway_access_cache_seconds


def _query(spark: SparkSession) -> None:
    assert spark.sql("SELECT 40 + 2").collect()[0][0] == 42


def _refused_within(spark: SparkSession, since: float, bound: float, fragment: str) -> SparkConnectGrpcException:
    """Poll with the old token until the gateway refuses it; it must refuse within the bound.

    The client retries UNAVAILABLE only briefly (PySpark's default keeps at it for ten minutes): enough to
    reconnect when a stopped Sail server takes its connection along, not enough to hide a gateway that
    cannot say why it refuses."""
    spark.client.set_retry_policies([DefaultPolicy(max_retries=4, initial_backoff=50, max_backoff=400)])
    deadline = since + bound + POLL_SLACK
    while True:
        try:
            _query(spark)
        except SparkConnectGrpcException as exc:
            elapsed = time.monotonic() - since
            assert grpc_code(exc) in REFUSED, exc
            assert fragment in str(exc), exc
            assert elapsed <= bound + POLL_SLACK, f"refused after {elapsed:.2f}s, bound {bound}s"
            return exc
        assert time.monotonic() < deadline, f"the old token still works {bound + POLL_SLACK:.1f}s after the change"
        time.sleep(0.1)


def _still_works_past_the_bound(spark: SparkSession, since: float, bound: float) -> None:
    while time.monotonic() < since + bound + POLL_SLACK:
        _query(spark)
        time.sleep(0.2)


def _assert_closed_for_access(viewer: Actor, session: dict[str, Any], fragment: str, server: LiveServer) -> None:
    found = describe(viewer, session["id"])
    assert found["status"] == "closed", found
    assert found["terminationReason"] == "access_revoked", found
    assert fragment in (found["statusMessage"] or ""), found
    assert found["closedAt"] is not None
    wait_until(lambda: session["workloadId"] not in sail_pids(server))  # its Sail server is stopped


def test_removed_from_team(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    other_team = create_team(owner, "stays")
    dev = create_member(owner)
    add_to_team(owner, team, dev)
    add_to_team(owner, other_team, dev)
    lost, kept = open_session(dev, team), open_session(dev, other_team)
    bound = _bound(compute_server)
    with spark_session(spark_url(lost, issue_token(dev, lost["id"]))) as spark, \
            spark_session(spark_url(kept, issue_token(dev, kept["id"]))) as kept_spark:
        _query(spark)
        _query(kept_spark)
        r = owner.delete(f"/org/teams/{team}/members/{dev.member_id}")
        assert r.status_code == 200, r.text
        removed = time.monotonic()
        _refused_within(spark, removed, bound, f"session {lost['id']} was closed")
        # The session in the team they still belong to is untouched.
        _still_works_past_the_bound(kept_spark, removed, bound)
    _assert_closed_for_access(owner, lost, "removed from the session's team", compute_server)
    err = assert_error(dev.post(f"/workloads/sessions/{lost['id']}/token", json={}), 403)
    assert "team" in err["message"]
    assert describe(dev, kept["id"])["status"] in ("pending", "active", "idle")
    assert dev.delete(f"/workloads/sessions/{kept['id']}").status_code == 200
    audit = owner.get("/org/audit-events", params={"resourceId": lost["id"]}).json()["items"]
    assert any(e["action"] == "session.close" and e["details"].get("reason") == "access_revoked" for e in audit)


def _invite_existing_user(owner: Actor, user: Actor, server: LiveServer) -> Actor:
    """Invite a user who already has an account into the owner's organization; they accept by the emailed link
    (this server has no SMTP, so the mail is in its outbox)."""
    r = owner.post("/org/invites", json={"email": user.email})
    assert r.status_code == 201, r.text

    def link() -> str | None:
        for path in sorted(Path(server.settings.data_dir, "outbox").glob("*.eml")):
            message = message_from_bytes(path.read_bytes())
            if str(message["To"]).lower() == (user.email or "").lower():
                payload = message.get_payload(decode=True)
                assert isinstance(payload, bytes)
                found = re.search(r"/invites/([A-Z0-9]{20})\b", payload.decode())
                if found:
                    return found.group(1)
        return None

    token = wait_until(link, timeout=10)
    accepted = user.post(f"/invites/{token}/accept")
    assert accepted.status_code == 200, accepted.text
    here = user.as_org(owner.org_id or "")
    here.member_id = accepted.json()["memberId"]
    return here


def test_removed_from_organization(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    dev = _invite_existing_user(owner, signup(compute_api), compute_server)  # also in an organization of their own
    admin = create_member(owner, "ADMIN")
    add_to_team(owner, team, dev)
    session = open_session(dev, team)
    bound = _bound(compute_server)
    # An admin holds a token for the member's session too (admins may get one for any session).
    admin_token = issue_token(admin, session["id"])
    with spark_session(spark_url(session, issue_token(dev, session["id"]))) as spark, \
            spark_session(spark_url(session, admin_token)) as admin_spark:
        _query(spark)
        _query(admin_spark)
        r = owner.delete(f"/org/members/{dev.member_id}")
        assert r.status_code == 200, r.text
        removed = time.monotonic()
        _refused_within(spark, removed, bound, f"session {session['id']} was closed")
        _refused_within(admin_spark, removed, bound, f"session {session['id']} was closed")
    _assert_closed_for_access(owner, session, "removed from the organization", compute_server)
    # To that organization they are an outsider now: 404, while their own organization still works.
    assert_error(dev.post(f"/workloads/sessions/{session['id']}/token", json={}), 404)
    assert dev.as_org(dev.org_id or "").get("/me").status_code == 404
    assert Actor(compute_api, dev.token).get("/me").status_code == 200


def test_admin_token_refused_when_admin_leaves(compute_api: str, compute_server: LiveServer) -> None:
    """An organization admin's token for someone else's session dies with the admin's membership; the
    session itself, whose owner kept access, stays open."""
    owner, team = org_with_team(compute_api)
    admin = create_member(owner, "ADMIN")
    session = open_session(owner, team)
    bound = _bound(compute_server)
    with spark_session(spark_url(session, issue_token(admin, session["id"]))) as admin_spark, \
            spark_session(spark_url(session, issue_token(owner, session["id"]))) as owner_spark:
        _query(admin_spark)
        r = owner.put(f"/org/members/{admin.member_id}/roles", json={"roleIds": ["MEMBER"]})
        assert r.status_code == 200, r.text
        demoted = time.monotonic()
        exc = _refused_within(admin_spark, demoted, bound, "may no longer use session")
        assert grpc_code(exc) == grpc.StatusCode.PERMISSION_DENIED
        _query(owner_spark)
    assert_error(admin.post(f"/workloads/sessions/{session['id']}/token", json={}), 404)
    assert describe(owner, session["id"])["status"] in ("pending", "active", "idle")
    assert owner.delete(f"/workloads/sessions/{session['id']}").status_code == 200


def test_user_deleted(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    dev = create_member(owner)
    add_to_team(owner, team, dev)
    session = open_session(dev, team)
    bound = _bound(compute_server)
    with spark_session(spark_url(session, issue_token(dev, session["id"]))) as spark:
        _query(spark)
        r = owner.delete(f"/users/{dev.user_id}")
        assert r.status_code == 200, r.text
        deleted = time.monotonic()
        _refused_within(spark, deleted, bound, f"session {session['id']} was closed")
    _assert_closed_for_access(owner, session, "removed from the organization", compute_server)
    # The account is gone, and its login with it.
    assert_error(dev.post(f"/workloads/sessions/{session['id']}/token", json={}), 401)


def test_login_revoked(compute_api: str, compute_server: LiveServer) -> None:
    """Signing out, or revoking a login from another one, ends the session tokens issued through it;
    the member keeps their session and gets a working token through a login that is still valid."""
    owner, team = org_with_team(compute_api)
    dev = create_member(owner)
    add_to_team(owner, team, dev)
    second = login(compute_api, dev.email or "", dev.password or "").json()
    third = login(compute_api, dev.email or "", dev.password or "").json()
    by_second = Actor(compute_api, second["token"], owner.org_id)
    by_third = Actor(compute_api, third["token"], owner.org_id)
    session = open_session(dev, team)
    bound = _bound(compute_server)
    with spark_session(spark_url(session, issue_token(dev, session["id"]))) as signed_out, \
            spark_session(spark_url(session, issue_token(by_second, session["id"]))) as revoked:
        _query(signed_out)
        _query(revoked)
        assert dev.post("/auth/logout").status_code == 200
        assert by_third.delete(f"/me/logins/{second['loginId']}").status_code == 200
        changed = time.monotonic()
        _refused_within(signed_out, changed, bound, "sign-in this session token was issued through has ended")
        _refused_within(revoked, changed, bound, "sign-in this session token was issued through has ended")
    for gone in (dev, by_second):
        assert_error(gone.post(f"/workloads/sessions/{session['id']}/token", json={}), 401)
    assert describe(by_third, session["id"])["status"] in ("pending", "active", "idle")
    with spark_session(spark_url(session, issue_token(by_third, session["id"]))) as spark:
        _query(spark)
    assert by_third.delete(f"/workloads/sessions/{session['id']}").status_code == 200


def test_service_account_key_revoked_then_account_deleted(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    account_id, robot = create_service_account(owner, "etl-bot", ["CanViewTeam", "CanCreateSessions"])
    spare = owner.post(f"/org/service-accounts/{account_id}/api-keys", json={"name": "spare"})
    assert spare.status_code == 201, spare.text
    robot_spare = Actor(compute_api, spare.json()["secret"], owner.org_id)
    keys = owner.get(f"/org/service-accounts/{account_id}/api-keys").json()["items"]
    first_key = next(k["id"] for k in keys if k["name"] == "key")
    session = open_session(robot, team)
    bound = _bound(compute_server)
    with spark_session(spark_url(session, issue_token(robot, session["id"]))) as spark:
        _query(spark)
        r = owner.delete(f"/org/service-accounts/{account_id}/api-keys/{first_key}")
        assert r.status_code == 200, r.text
        _refused_within(spark, time.monotonic(), bound, "API key this session token was issued with was revoked")
    assert_error(robot.post(f"/workloads/sessions/{session['id']}/token", json={}), 401)
    # The account and its session live on; its other key still gets a working token.
    assert describe(robot_spare, session["id"])["status"] in ("pending", "active", "idle")
    with spark_session(spark_url(session, issue_token(robot_spare, session["id"]))) as spark:
        _query(spark)
        r = owner.delete(f"/org/service-accounts/{account_id}")
        assert r.status_code == 200, r.text
        _refused_within(spark, time.monotonic(), bound, f"session {session['id']} was closed")
    _assert_closed_for_access(owner, session, "service account was deleted", compute_server)
    assert_error(robot_spare.post(f"/workloads/sessions/{session['id']}/token", json={}), 401)


def test_deactivated_member(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    dev = create_member(owner)
    add_to_team(owner, team, dev)
    session = open_session(dev, team)
    bound = _bound(compute_server)
    with spark_session(spark_url(session, issue_token(dev, session["id"]))) as spark:
        _query(spark)
        r = owner.patch(f"/org/members/{dev.member_id}", json={"status": "deactivated"})
        assert r.status_code == 200, r.text
        _refused_within(spark, time.monotonic(), bound, f"session {session['id']} was closed")
    _assert_closed_for_access(owner, session, "deactivated", compute_server)
    wait_for_status(owner, session["id"], "closed")


def test_closed_by_another_node(compute_api: str, compute_server: LiveServer) -> None:
    """Another control-plane node (here: a plain write to the shared database, which is all another
    node's request would leave behind for this one) closes a session: this node's gateway refuses its
    token within the bound and its controller stops the Sail server, with no in-process notice."""
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team)
    bound = _bound(compute_server)
    engine = create_engine(compute_server.settings.database_url)
    try:
        with spark_session(spark_url(session, issue_token(owner, session["id"]))) as spark:
            _query(spark)
            with engine.begin() as conn:
                conn.execute(text("UPDATE sessions SET status = 'closed', termination_reason = 'access_revoked', "
                                  "status_message = 'Closed on another node.' WHERE id = :id"), {"id": session["id"]})
            _refused_within(spark, time.monotonic(), bound, "Closed on another node.")
    finally:
        engine.dispose()
    wait_until(lambda: session["workloadId"] not in sail_pids(compute_server))
