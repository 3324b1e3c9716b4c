"""The gateway's traffic in /metrics: a real PySpark client's calls and bytes, and a refused token, counted."""

from __future__ import annotations

import time

import pytest

from sailplane.gateway.tokens import SigningKeys
from tests.sessions.helpers import close, grpc_code, issue_token, open_session, org_with_team, spark_session, spark_url
from tests.support.metrics import scrape, value
from tests.support.server import LiveServer


def test_calls_bytes_and_refusals_are_counted(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    session = open_session(owner, team)
    token = issue_token(owner, session["id"], durationSeconds=600)
    before = scrape(compute_server.url)
    with spark_session(spark_url(session, token)) as spark:
        assert spark.sql("SELECT 40 + 2").collect()[0][0] == 42
    middle = scrape(compute_server.url)
    assert value(middle, "sailplane_gateway_calls_total", method="ExecutePlan") > \
        value(before, "sailplane_gateway_calls_total", method="ExecutePlan")
    for direction in ("from_clients", "from_sail"):
        assert value(middle, "sailplane_gateway_bytes_total", direction=direction) > \
            value(before, "sailplane_gateway_bytes_total", direction=direction)

    keys = SigningKeys.load_or_create(compute_server.settings.data_dir)
    expired = keys.issue(session["id"], owner.member_id or "", 60, now=time.time() - 3600)
    with pytest.raises(Exception) as refused, spark_session(spark_url(session, expired)) as spark:
        spark.sql("SELECT 1").collect()
    assert grpc_code(refused.value) is not None
    after = scrape(compute_server.url)
    assert value(after, "sailplane_gateway_refused_calls_total", code="UNAUTHENTICATED") > \
        value(middle, "sailplane_gateway_refused_calls_total", code="UNAUTHENTICATED")
    # Nothing was relayed for the refused client: no call counted for it.
    assert value(after, "sailplane_gateway_calls_total", method="ExecutePlan") == \
        value(middle, "sailplane_gateway_calls_total", method="ExecutePlan")
    close(owner, session["id"])
