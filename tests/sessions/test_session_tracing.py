"""The gateway's Spark Connect calls as OpenTelemetry spans (exported to tests.support.otlp, the loopback stand-in
for a collector): one server span per relayed call of a real PySpark client, naming the method and the session,
never the token."""

from __future__ import annotations

from pathlib import Path

from sailplane.compute.local import LocalSailBackend
from tests.sessions.conftest import assert_no_sail_left, compute_settings
from tests.sessions.helpers import close, issue_token, open_session, org_with_team, spark_session, spark_url
from tests.support.otlp import SERVER, OtlpCollector
from tests.support.server import LiveServer
from tests.support.waiting import wait_until


def test_relayed_calls_are_spans(tmp_path: Path, database_url: str) -> None:
    collector = OtlpCollector().start()
    data_dir = tmp_path / "node"
    server = LiveServer(compute_settings(data_dir, database_url, otlp_traces_endpoint=collector.traces_url))
    server.start()
    try:
        owner, team = org_with_team(f"{server.url}/api/v1")
        session = open_session(owner, team)
        token = issue_token(owner, session["id"])
        with spark_session(spark_url(session, token)) as spark:
            assert spark.sql("SELECT 40 + 2").collect()[0][0] == 42
        close(owner, session["id"])
        wait_until(lambda: not LocalSailBackend(data_dir).scan())
    finally:
        server.stop()  # sends the spans still batched
        collector.stop()
        assert_no_sail_left(data_dir)

    calls = [s for s in collector.spans() if s.attributes.get("rpc.system") == "grpc"]
    executed = [s for s in calls if s.name == "spark.connect.SparkConnectService/ExecutePlan"]
    assert executed, [s.name for s in calls]
    assert all(s.kind == SERVER and s.attributes["rpc.method"] == s.name.rsplit("/", 1)[1]
               and s.attributes["sailplane.session_id"] == session["id"]
               and s.attributes["sailplane.organization_id"] == owner.org_id for s in calls)
    assert token.encode() not in collector.raw()
