"""An operation's steps reuse the connection role's credentials this process got within REUSE_SECONDS (fewer STS
calls per operation: bench/operations_bench.py); verification and requests always assume the role anew, and a
different external ID or an elapsed reuse window assumes it again. Against the moto server (it issues new keys on
every AssumeRole, which is what the test tells the calls apart by)."""

from __future__ import annotations

from typing import Any

import pytest

from sailplane.infra.providers import aws as aws_module
from sailplane.infra.providers.aws import Aws
from tests.infra.conftest import infra_settings
from tests.infra.helpers import verified
from tests.support.actors import signup


def test_steps_reuse_the_role_and_checks_do_not(infra_api: str, customer_aws: Any, moto_url: str, tmp_path: Any,
                                                  database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = signup(infra_api)
    connection = verified(owner, customer_aws)
    role_arn = connection["providerConfig"]["roleArn"]
    external_id = connection["template"]["parameters"]["ExternalId"]
    aws = Aws(infra_settings(tmp_path, database_url, moto_url))

    first = aws.assume(role_arn, external_id, "step", reuse=True)
    assert first.account_id == "123456789012" and first.arn.startswith("arn:aws:sts::")
    assert aws.assume(role_arn, external_id, "step", reuse=True).access_key_id == first.access_key_id
    # A check assumes it now, every time.
    fresh = aws.assume(role_arn, external_id, "step")
    assert fresh.access_key_id != first.access_key_id
    # Another external ID is another request to STS.
    assert aws.assume(role_arn, external_id + "x", "step", reuse=True).access_key_id not in (first.access_key_id,
                                                                                          fresh.access_key_id)
    # Once the window has passed, a step assumes it again.
    monkeypatch.setattr(aws_module, "REUSE_SECONDS", 0.0)
    again = aws.assume(role_arn, external_id, "later", reuse=True)
    assert aws.assume(role_arn, external_id, "later", reuse=True).access_key_id != again.access_key_id
