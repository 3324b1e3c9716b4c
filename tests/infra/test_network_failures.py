"""A network operation that fails leaves a clear error on the operation and on the network (`failed`, its
`statusMessage`), refuses what would lose track of the infrastructure (deleteNetworkRecord), and is retried by
starting the operation again.

The failure provoked: the customer put a subnet of their own into the network's VPC, so the VPC cannot be deleted.
AWS would answer DeleteStack and fail the stack later (DELETE_FAILED, seen by `wait_stack`); moto fails DeleteStack
itself (DependencyViolation) and forgets the stack while its VPC stays: the retried destroy therefore finds no stack
(it says so) rather than deleting it again.
"""

from __future__ import annotations

from typing import Any

from tests.infra.helpers import verified, wait_operation
from tests.support.actors import assert_error, signup


def test_a_failed_destroy_says_why_and_is_retried(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    base = f"/infra/connections/{conn_id}/networks"
    r = owner.post(base, json={"name": "n", "config": {"cidr": "10.90.0.0/16"}})
    assert r.status_code == 201, r.text
    net_id = r.json()["id"]
    provisioned = wait_operation(owner, owner.post(f"{base}/{net_id}/provision").json()["id"])
    assert provisioned["status"] == "succeeded", provisioned
    vpc_id = provisioned["result"]["providerNetworkId"]
    ec2 = customer_aws("ec2")
    theirs = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.90.255.0/24")["Subnet"]["SubnetId"]

    failed = wait_operation(owner, owner.delete(f"{base}/{net_id}").json()["id"])
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "cloud_provider_error"
    assert failed["error"]["details"]["causedBy"] == "DependencyViolation"
    assert failed["error"]["details"]["retryable"] is True and "DeleteStack" in failed["error"]["message"]
    assert [s["status"] for s in failed["progress"]["resources"]] == ["succeeded", "failed", "unchanged",
                                                                      "unchanged"]
    item = owner.get(f"{base}/{net_id}").json()["item"]
    assert item["status"] == "failed" and "DependencyViolation" in item["statusMessage"]
    assert failed["id"] in item["statusMessage"]
    # What may still exist in the account keeps its record.
    assert_error(owner.delete(f"/infra/networks/{net_id}"), 409, "network_not_destroyed")

    ec2.delete_subnet(SubnetId=theirs)
    retried = wait_operation(owner, owner.delete(f"{base}/{net_id}").json()["id"])
    assert retried["status"] == "succeeded", retried
    assert retried["id"] != failed["id"]
    item = owner.get(f"{base}/{net_id}").json()["item"]
    assert item["status"] == "destroyed" and item["providerNetworkId"] is None
    assert owner.delete(f"/infra/networks/{net_id}").status_code == 200
