"""A stock PySpark client runs queries on Sail through the authenticating gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from pyspark.errors import AnalysisException
from pyspark.errors.exceptions.connect import SparkConnectGrpcException

from sailplane.compute.backend import InstanceHandle, InstanceSpec
from sailplane.compute.local import LocalSailBackend
from sailplane.gateway.spark_connect import SESSION_HEADER
from sailplane.gateway.tokens import AUDIENCE, SigningKeys
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
from tests.support.actors import assert_error
from tests.support.server import LiveServer

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def direct_sail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstanceHandle]:
    """A Sail server reached without the gateway: the baseline errors are compared against."""
    backend = LocalSailBackend(tmp_path_factory.mktemp("direct-sail"))
    handle = asyncio.run(backend.start(InstanceSpec(instance_id="DIRECT1")))
    yield handle
    asyncio.run(backend.stop(handle))


def _denied(url: str, code: grpc.StatusCode, fragment: str) -> None:
    with pytest.raises(SparkConnectGrpcException) as info, spark_session(url) as spark:
        spark.sql("SELECT 1").collect()
    assert grpc_code(info.value) == code, info.value
    assert fragment in str(info.value), info.value


def test_sql_and_dataframes_then_close_stops_sail(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    created = open_session(owner, team, name="notebook work", metadata={"purpose": "test"})
    assert created["status"] == "pending"
    assert created["name"] == "notebook work" and created["metadata"] == {"purpose": "test"}
    assert created["connectionInfo"]["grpcEndpoint"].startswith("sc://localhost:")
    assert created["connectionInfo"]["proxyAuthUrl"] is None
    token = issue_token(owner, created["id"])
    with spark_session(spark_url(created, token)) as spark:
        assert spark.sql("SELECT 1 AS one, 'a' AS s").collect() == [(1, "a")]
        df = spark.range(0, 1000).selectExpr("id % 7 AS k", "id").groupBy("k").sum("id").orderBy("k")
        assert [(r["k"], r["sum(id)"]) for r in df.collect()] == [
            (k, sum(i for i in range(1000) if i % 7 == k)) for k in range(7)]
        spark.createDataFrame([(1, "x"), (2, "y")], ["n", "c"]).createOrReplaceTempView("t")
        assert spark.sql("SELECT c FROM t WHERE n = 2").collect()[0]["c"] == "y"
        active = describe(owner, created["id"])
        assert active["status"] == "active" and active["lastActivityAt"] is not None
        assert created["workloadId"] in sail_pids(compute_server)

        close(owner, created["id"])
        closed = describe(owner, created["id"])
        assert closed["status"] == "closed" and closed["terminationReason"] == "closed_by_user"
        assert closed["closedAt"] is not None
        # Refused at once, with a message that says why; the Sail process goes away shortly after.
        with pytest.raises(SparkConnectGrpcException) as info:
            spark.sql("SELECT 2").collect()
        assert grpc_code(info.value) == grpc.StatusCode.UNAUTHENTICATED
        assert f"session {created['id']} was closed" in str(info.value)
    wait_until(lambda: created["workloadId"] not in sail_pids(compute_server))
    # The process goes first, then the controller records it (under load, a moment later).
    wait_until(lambda: [(w["id"], w["infraStatus"]) for w in owner.get("/workloads/sessions").json()["included"][
        "workloads"]] == [(created["workloadId"], "stopped")])
    assert close(owner, created["id"]) is None  # closing again is harmless
    assert_error(owner.post(f"/workloads/sessions/{created['id']}/token", json={}), 409, "session_closed")
    actions = [(e["action"], e["resourceId"]) for e in owner.get("/org/audit-events").json()["items"]]
    for action in ("session.create", "session.issue_token", "session.close"):
        assert (action, created["id"]) in actions


def test_invalid_query_raises_the_same_exception_as_direct(compute_api: str, direct_sail: InstanceHandle) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team)
    query = "SELECT no_such_column FROM VALUES (1) AS t(a)"
    raised: list[AnalysisException] = []
    for url in (f"sc://localhost:{direct_sail.port}", spark_url(session, issue_token(owner, session["id"]))):
        with spark_session(url) as spark, pytest.raises(AnalysisException) as info:
            spark.sql(query).collect()
        raised.append(info.value)
    direct, proxied = raised
    assert type(proxied) is type(direct)
    assert str(proxied) == str(direct)
    close(owner, session["id"])


def test_tokens_are_checked_by_the_gateway(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    first, second = open_session(owner, team), open_session(owner, team)
    token = issue_token(owner, first["id"], durationSeconds=600)
    keys = SigningKeys.load_or_create(compute_server.settings.data_dir)  # the server's own key
    # A token for one session, presented as another session's: refused.
    _denied(spark_url(first, token, f";{SESSION_HEADER}={second['id']}"), grpc.StatusCode.PERMISSION_DENIED,
            f"issued for session {first['id']}, not {second['id']}")
    # Expired, forged, and for a session that never existed.
    expired = keys.issue(first["id"], owner.member_id or "", 60, now=time.time() - 3600)
    _denied(spark_url(first, expired), grpc.StatusCode.UNAUTHENTICATED, "expired")
    now = int(time.time())
    claims = {"sub": "X", "sid": first["id"], "iat": now, "exp": now + 300, "jti": "j", "aud": AUDIENCE}
    forged = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": keys.kid})
    _denied(spark_url(first, forged), grpc.StatusCode.UNAUTHENTICATED, "signature is invalid")
    _denied(spark_url(first, keys.issue("NOSUCHSESSION", "X", 60)), grpc.StatusCode.UNAUTHENTICATED, "not open")
    # The right token for the right session works; once closed, the same token is refused.
    with spark_session(spark_url(first, token, f";{SESSION_HEADER}={first['id']}")) as spark:
        assert spark.sql("SELECT 2").collect()[0][0] == 2
    close(owner, first["id"])
    _denied(spark_url(first, token), grpc.StatusCode.UNAUTHENTICATED, "was closed")
    close(owner, second["id"])


def test_token_durations(compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team)
    sid = session["id"]
    r = owner.post(f"/workloads/sessions/{sid}/token")  # no body: the default lifetime
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    assert claims["sid"] == sid and claims["sub"] == owner.member_id
    assert claims["exp"] - claims["iat"] == 28800
    assert r.json()["expiresAt"].endswith("Z")
    short = owner.post(f"/workloads/sessions/{sid}/token", json={"durationSeconds": 120}).json()
    assert jwt.decode(short["token"], options={"verify_signature": False})["exp"] - int(time.time()) <= 121
    err = assert_error(owner.post(f"/workloads/sessions/{sid}/token", json={"durationSeconds": 86401}), 422)
    assert "durationSeconds" in err["details"]["fieldErrors"]
    assert_error(owner.post(f"/workloads/sessions/{sid}/token", json={"durationSeconds": 10}), 422)
    assert_error(owner.post(f"/workloads/sessions/{sid}/token", json={"durationSeconds": "x"}), 422)
    assert_error(owner.post(f"/workloads/sessions/{sid}/token", json={"ttl": 60}), 422)
    close(owner, sid)


def test_jwks_verifies_issued_tokens(compute_api: str, compute_server: LiveServer, tmp_path: Path) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team)
    token = issue_token(owner, session["id"])
    jwks = owner.get(f"{compute_server.url}/.well-known/jwks.json").json()
    [key] = jwks["keys"]
    assert set(key) >= {"kty", "kid", "alg", "use"} and "d" not in key
    public = jwt.PyJWK(key).key
    claims = jwt.decode(token, public, algorithms=[key["alg"]], audience=AUDIENCE)
    assert claims["sid"] == session["id"]
    close(owner, session["id"])
