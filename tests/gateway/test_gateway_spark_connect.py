"""A real PySpark client, through the gateway, to a real Sail server."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from pyspark.errors import AnalysisException
from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql import SparkSession

from sailplane.compute.backend import InstanceHandle
from sailplane.gateway.spark_connect import SESSION_HEADER, TOKEN_HEADER
from sailplane.gateway.tokens import AUDIENCE
from tests.support.clients import run_script

if TYPE_CHECKING:
    from tests.gateway.conftest import RunningGateway

# PySpark itself logs through a deprecated logging method when a call fails.
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


@contextlib.contextmanager
def spark_session(url: str) -> Iterator[SparkSession]:
    # create(), not getOrCreate(): each test gets its own session for its own URL and token.
    spark = SparkSession.builder.remote(url).create()
    try:
        yield spark
    finally:
        with contextlib.suppress(Exception):
            spark.stop()


def gateway_url(gateway: RunningGateway, token: str, extra: str = "") -> str:
    # With token= and host "localhost" (no use_ssl), PySpark uses gRPC local credentials: plaintext
    # on loopback with the bearer token attached.
    return f"sc://localhost:{gateway.port}/;token={token}{extra}"


def direct_url(sail: InstanceHandle) -> str:
    return f"sc://localhost:{sail.port}"


def grpc_code(exc: BaseException) -> grpc.StatusCode | None:
    getter = getattr(exc, "getGrpcStatusCode", None)
    return getter() if getter else None


def test_sql_and_dataframe(gateway: RunningGateway) -> None:
    token = gateway.keys.issue(gateway.session, "USER1", 300)
    before = gateway.activity.count(gateway.session)
    with spark_session(gateway_url(gateway, token)) as spark:
        assert spark.sql("SELECT 1 AS one, 'a' AS s").collect() == [(1, "a")]
        df = spark.range(0, 1000).selectExpr("id % 7 AS k", "id").groupBy("k").sum("id").orderBy("k")
        rows = [(r["k"], r["sum(id)"]) for r in df.collect()]
        assert rows == [(k, sum(i for i in range(1000) if i % 7 == k)) for k in range(7)]
        spark.createDataFrame([(1, "x"), (2, "y")], ["n", "c"]).createOrReplaceTempView("t")
        assert spark.sql("SELECT c FROM t WHERE n = 2").collect()[0]["c"] == "y"
        assert spark.sql("SELECT 1").schema.fieldNames() == ["1"]  # AnalyzePlan
    assert gateway.activity.count(gateway.session) > before
    assert {"ExecutePlan", "AnalyzePlan"} <= set(gateway.methods)


def test_token_as_plain_metadata(gateway: RunningGateway) -> None:
    """The x-sailplane-token parameter skips PySpark's call-credentials path (see TOKEN_HEADER)."""
    token = gateway.keys.issue(gateway.session, "USER1", 300)
    with spark_session(f"sc://localhost:{gateway.port}/;{TOKEN_HEADER}={token}") as spark:
        assert spark.range(5).count() == 5


def test_errors_are_the_same_as_direct(gateway: RunningGateway, sail: InstanceHandle) -> None:
    query = "SELECT no_such_column FROM VALUES (1) AS t(a)"
    raised: list[AnalysisException] = []
    token = gateway.keys.issue(gateway.session, "USER1", 300)
    for url in (direct_url(sail), gateway_url(gateway, token)):
        with spark_session(url) as spark, pytest.raises(AnalysisException) as info:
            spark.sql(query).collect()
        raised.append(info.value)
    direct, proxied = raised
    assert type(proxied) is type(direct)
    assert proxied.getCondition() == direct.getCondition()
    assert str(proxied) == str(direct)


def test_client_streaming_call_errors_the_same(gateway: RunningGateway, sail: InstanceHandle, tmp_path: Path) -> None:
    """AddArtifacts is the client-streaming method; Sail 0.7 refuses it, and must do so identically."""
    module = tmp_path / "helper_mod.py"
    module.write_text("X = 1\n")
    token = gateway.keys.issue(gateway.session, "USER1", 300)
    outcomes = []
    for url in (direct_url(sail), gateway_url(gateway, token)):
        with spark_session(url) as spark:
            try:
                spark.addArtifacts(str(module), pyfile=True)
                outcomes.append(("ok", ""))
            except Exception as exc:  # whatever Sail does, the gateway must do the same
                outcomes.append((type(exc).__name__, str(exc)))
    assert outcomes[0] == outcomes[1]


def test_large_result_intact(gateway: RunningGateway) -> None:
    token = gateway.keys.issue(gateway.session, "USER1", 300)
    n = 120_000
    with spark_session(gateway_url(gateway, token)) as spark:
        rows = spark.range(n).selectExpr("id", "concat(repeat('x', 40), cast(id AS string)) AS s").collect()
    assert len(rows) == n  # ~7 MB of strings
    assert sum(r["id"] for r in rows) == n * (n - 1) // 2
    assert all(r["s"] == "x" * 40 + str(r["id"]) for r in rows)


def _expect_denied(url: str, code: grpc.StatusCode, fragment: str) -> None:
    with pytest.raises(SparkConnectGrpcException) as info, spark_session(url) as spark:
        spark.sql("SELECT 1").collect()
    assert grpc_code(info.value) == code, info.value
    assert fragment in str(info.value)


def test_missing_token(gateway: RunningGateway) -> None:
    _expect_denied(f"sc://localhost:{gateway.port}", grpc.StatusCode.UNAUTHENTICATED, "missing session token")


def test_forged_token(gateway: RunningGateway) -> None:
    now = int(time.time())
    claims = {"sub": "USER1", "sid": gateway.session, "iat": now, "exp": now + 300, "jti": "x", "aud": AUDIENCE}
    forged = jwt.encode(
        claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": gateway.keys.kid}
    )
    _expect_denied(gateway_url(gateway, forged), grpc.StatusCode.UNAUTHENTICATED, "signature is invalid")
    _expect_denied(gateway_url(gateway, "not-a-jwt"), grpc.StatusCode.UNAUTHENTICATED, "malformed")


def test_expired_token(gateway: RunningGateway) -> None:
    expired = gateway.keys.issue(gateway.session, "USER1", 60, now=time.time() - 3600)
    _expect_denied(gateway_url(gateway, expired), grpc.StatusCode.UNAUTHENTICATED, "expired")


def test_token_for_another_session(gateway: RunningGateway) -> None:
    other = gateway.keys.issue(gateway.other_session, "USER2", 300)
    _expect_denied(gateway_url(gateway, other), grpc.StatusCode.PERMISSION_DENIED, "is not yours")
    # The client names the session it means; a valid token for a different session is refused.
    token = gateway.keys.issue(gateway.session, "USER1", 300)
    _expect_denied(
        gateway_url(gateway, token, f";{SESSION_HEADER}={gateway.other_session}"),
        grpc.StatusCode.PERMISSION_DENIED,
        f"issued for session {gateway.session}, not {gateway.other_session}",
    )
    with spark_session(gateway_url(gateway, token, f";{SESSION_HEADER}={gateway.session}")) as spark:
        assert spark.sql("SELECT 2").collect()[0][0] == 2


TLS_CLIENT = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.remote(sys.argv[1]).create()
    try:
        rows = spark.range(10).selectExpr("sum(id) AS s").collect()
        print(json.dumps({"sum": rows[0]["s"]}))
    finally:
        spark.stop()
    """
)


def test_tls_with_self_signed_certificate(tls_gateway: RunningGateway) -> None:
    """The way a remote user connects: use_ssl=true, trusting the gateway's certificate."""
    assert tls_gateway.cert is not None
    token = tls_gateway.keys.issue(tls_gateway.session, "USER1", 300)
    env = {**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(tls_gateway.cert)}
    url = f"sc://localhost:{tls_gateway.port}/;use_ssl=true;token={token}"
    out = run_script(sys.executable, TLS_CLIENT, url, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"sum": 45}


def _reattach(channel: grpc.Channel, metadata: list[tuple[str, str]], session_id: str,
              operation_id: str) -> grpc.RpcError:
    from pyspark.sql.connect.proto import base_pb2, base_pb2_grpc

    stub = base_pb2_grpc.SparkConnectServiceStub(channel)
    request = base_pb2.ReattachExecuteRequest(session_id=session_id, operation_id=operation_id,
                                              user_context=base_pb2.UserContext(user_id="u"))
    with pytest.raises(grpc.RpcError) as info:
        list(stub.ReattachExecute(request, metadata=metadata))
    return info.value


def test_reattaching_an_operation_sail_never_saw(gateway: RunningGateway, sail: InstanceHandle) -> None:
    """Sail says "operation not found" where a Spark Connect server says INVALID_HANDLE.OPERATION_NOT_FOUND,
    the one answer on which clients send their ExecutePlan again (a call lost while the control plane
    restarted). The gateway says it Spark's way, status message and ErrorInfo alike; the connection's
    other calls are unaffected, and an operation Sail did see is answered as Sail answers it."""
    import uuid

    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    session_id, operation = str(uuid.uuid4()), str(uuid.uuid4())
    with grpc.insecure_channel(f"127.0.0.1:{sail.port}") as direct:
        plain = _reattach(direct, [], session_id, operation)
    assert f"operation not found: {operation}" in str(plain.details())
    assert "INVALID_HANDLE" not in str(plain.details())

    token = gateway.keys.issue(gateway.session, "USER1", 300)
    metadata = [("authorization", f"Bearer {token}")]
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        for _ in range(3):  # and again, on the same connection (each answer decodes on its own)
            error = _reattach(channel, metadata, session_id, str(uuid.uuid4()))
            assert error.code() == plain.code()
            assert "[INVALID_HANDLE.OPERATION_NOT_FOUND]" in str(error.details())
            status = rpc_status.from_call(error)  # what PySpark reads: consistent with the call's status
            assert status is not None and "INVALID_HANDLE.OPERATION_NOT_FOUND" in status.message
            info = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(info)
            assert info.metadata["errorClass"] == "INVALID_HANDLE.OPERATION_NOT_FOUND"
        # An operation Sail saw (cut off before its end): answered as Sail answers it, never to be re-sent.
        from pyspark.sql.connect.proto import base_pb2, base_pb2_grpc, relations_pb2

        seen = str(uuid.uuid4())
        call = base_pb2_grpc.SparkConnectServiceStub(channel).ExecutePlan(base_pb2.ExecutePlanRequest(
            session_id=session_id, operation_id=seen, user_context=base_pb2.UserContext(user_id="u"),
            plan=base_pb2.Plan(root=relations_pb2.Relation(sql=relations_pb2.SQL(
                query="SELECT count(*) FROM range(0, 3000000000)"))),
            request_options=[base_pb2.ExecutePlanRequest.RequestOption(
                reattach_options=base_pb2.ReattachOptions(reattachable=True))]), metadata=metadata)
        time.sleep(0.5)
        call.cancel()
        time.sleep(0.5)
        cut = _reattach(channel, metadata, session_id, seen)
        assert "INVALID_HANDLE" not in str(cut.details()) and "task context" in str(cut.details()), cut.details()
    # A stock client, whose calls share that kind of connection, still runs queries through it.
    with spark_session(gateway_url(gateway, token)) as spark:
        assert spark.sql("SELECT 6 * 7").collect()[0][0] == 42
