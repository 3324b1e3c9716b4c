"""A connection from creation to a synced template, through the API against the moto server: create, download the
template, deploy it as the customer's admin would, verify, read the account (regions, instance types, VPCs),
sync the template (an operation), follow it with getOperation.

moto accepts any external ID and enforces no trust policy, so what proves the external ID guards the role here
is the role the template deployed: its trust policy names our principal on the condition of that external ID.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from sailplane.infra.connections.template import TEMPLATE_VERSION
from tests.infra.conftest import ACCOUNT, PRINCIPAL, REGION
from tests.infra.helpers import (
    as_older_version,
    create_connection,
    deploy,
    download_template,
    stack_outputs,
    verified,
    wait_operation,
)
from tests.support.actors import signup

CONNECTION_FIELDS = {"id", "name", "provider", "providerConfig", "status", "statusMessage", "lastUsedAt",
                     "templateSyncedAt", "templateSyncMessage", "createdAt", "createdBy", "updatedAt", "updatedBy"}
OPERATION_FIELDS = {"id", "organizationId", "memberId", "operation", "status", "result", "error", "progress",
                    "resourceType", "resourceId", "createdAt", "updatedAt", "startedAt", "completedAt"}


def _trust_policy(customer_aws: Any, role_name: str) -> dict[str, Any]:
    role = customer_aws("iam").get_role(RoleName=role_name)["Role"]
    document = role["AssumeRolePolicyDocument"]
    return json.loads(unquote(document)) if isinstance(document, str) else document  # type: ignore[no-any-return]


def test_connection_journey(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    created = create_connection(owner, "production")
    assert set(created) == CONNECTION_FIELDS | {"template"}
    conn_id = created["id"]
    role_name = f"SailplaneConnection-{conn_id}"
    assert created["provider"] == "aws" and created["status"] == "pending"
    assert created["providerConfig"] == {"accountId": ACCOUNT, "region": REGION,
                                         "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role_name}",
                                         "externalIdSecretArn": None, "stackArn": None}
    info = created["template"]
    external_id = info["parameters"]["ExternalId"]
    assert len(external_id) >= 32
    assert info["parameters"] == {"ExternalId": external_id, "SailplanePrincipalArn": PRINCIPAL,
                                  "RoleName": role_name}
    assert info["templateVersion"] == TEMPLATE_VERSION
    assert info["stackName"] == f"sailplane-connection-{conn_id.lower()}"
    assert info["templateUrl"].endswith(f"/api/v1/infra/connections/{conn_id}/template/download")
    assert owner.get(f"/infra/connections/{conn_id}/template").json() == info

    # Before the template is deployed the role cannot be used: verification fails, saying why.
    early = owner.post(f"/infra/connections/{conn_id}/verify")
    assert early.status_code == 200, early.text
    assert early.json()["status"] == "failed" and "NoSuchEntity" in early.json()["statusMessage"]
    assert early.json()["lastUsedAt"] is None

    template = download_template(owner, created)
    parameters = template["Parameters"]
    assert parameters["ExternalId"]["Default"] == external_id and parameters["ExternalId"]["NoEcho"] is True
    assert parameters["SailplanePrincipalArn"]["Default"] == PRINCIPAL
    assert parameters["RoleName"]["Default"] == role_name
    stack = deploy(customer_aws, created, template)

    trust = _trust_policy(customer_aws, role_name)
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"AWS": PRINCIPAL} and statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}

    verified_body = owner.post(f"/infra/connections/{conn_id}/verify").json()
    assert verified_body["status"] == "active", verified_body
    assert verified_body["lastUsedAt"] is not None
    assert verified_body["providerConfig"]["stackArn"] == stack["StackId"]

    described = owner.get(f"/infra/connections/{conn_id}").json()
    assert set(described) == {"item", "included"} and described["item"]["status"] == "active"
    listed = owner.get("/infra/connections").json()
    assert set(listed) == {"total", "items", "included", "marker"}
    assert listed["total"] == 1 and [c["id"] for c in listed["items"]] == [conn_id]

    regions = owner.get(f"/infra/connections/{conn_id}/regions")
    assert regions.status_code == 200, regions.text
    assert {"region": REGION, "optInStatus": "opt-in-not-required"} in regions.json()["items"]

    types = owner.get(f"/infra/connections/{conn_id}/instance-types",
                      params={"architecture": "arm64", "minVcpus": 4, "minMemoryMib": 16384, "limit": 5})
    assert types.status_code == 200, types.text
    body = types.json()
    assert set(body) == {"items", "metadata"} and 0 < len(body["items"]) <= 5
    for item in body["items"]:
        assert item["architecture"] == "arm64" and item["vCpus"] >= 4 and item["memoryMiB"] >= 16384, item
        assert item["provider"] == "aws" and item["instanceFamily"] == item["instanceType"].split(".")[0]
        assert 0 < item["allocatableMilliCpu"] < item["vCpus"] * 1000 and item["maxPods"] > 0
    assert [(i["vCpus"], i["memoryMiB"]) for i in body["items"]] == sorted((i["vCpus"], i["memoryMiB"])
                                                                           for i in body["items"])
    m7g = owner.get(f"/infra/connections/{conn_id}/instance-types",
                    params={"region": "eu-west-1", "architecture": "arm64", "minVcpus": 2}).json()["items"]
    large = next(i for i in m7g if i["instanceType"] == "m7g.large")
    assert large == {"provider": "aws", "instanceType": "m7g.large", "vCpus": 2, "memoryMiB": 8192,
                     "architecture": "arm64", "gpuCount": 0, "instanceFamily": "m7g", "maxPods": 29,
                     "group": "general", "allocatableMilliCpu": 1930}

    ec2 = customer_aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "lakehouse"}])
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"{REGION}{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    networks = owner.get(f"/infra/connections/{conn_id}/provider-networks")
    assert networks.status_code == 200, networks.text
    ours = next(n for n in networks.json()["items"] if n["vpcId"] == vpc)
    assert ours["cidr"] == "10.42.0.0/16" and ours["name"] == "lakehouse" and ours["azCount"] == 2
    assert sorted(s["subnetId"] for s in ours["subnets"]) == sorted(subnets)
    assert {s["availabilityZone"] for s in ours["subnets"]} == {f"{REGION}a", f"{REGION}b"}
    elsewhere = owner.get(f"/infra/connections/{conn_id}/provider-networks", params={"region": "eu-west-1"})
    assert vpc not in [n["vpcId"] for n in elsewhere.json()["items"]]

    # The stack runs the current template: the sync operation finds nothing to change.
    started = owner.post(f"/infra/connections/{conn_id}/sync-template")
    assert started.status_code == 202, started.text
    op = started.json()
    assert set(op) == OPERATION_FIELDS
    assert op["operation"] == "sync_connection_template" and op["resourceType"] == "connection"
    assert op["resourceId"] == conn_id and op["memberId"] == owner.member_id
    ended = wait_operation(owner, op["id"])
    assert ended["status"] == "succeeded", ended
    assert ended["result"] == {"stackArn": stack["StackId"], "previousVersion": TEMPLATE_VERSION,
                               "templateVersion": TEMPLATE_VERSION, "updated": False}
    assert ended["error"] is None and ended["startedAt"] and ended["completedAt"]
    statuses = [r["status"] for r in ended["progress"]["resources"]]
    assert statuses == ["succeeded", "succeeded", "unchanged", "unchanged", "unchanged"]
    assert ended["progress"]["summary"] == {"total": 5, "pending": 0, "running": 0, "succeeded": 2, "failed": 0,
                                            "unchanged": 3}
    after = owner.get(f"/infra/connections/{conn_id}").json()
    assert after["item"]["templateSyncedAt"] is not None
    assert after["included"]["operations"][0]["id"] == op["id"]


def test_sync_brings_an_older_stack_to_the_current_template(infra_api: str, customer_aws: Any) -> None:
    """An admin deployed the template of an older Sailplane (version 0): the sync operation updates the stack
    through the connection's role (UpdateStack), and says so step by step."""
    owner = signup(infra_api)
    connection = verified(owner, customer_aws, as_older_version)
    stack_name = connection["template"]["stackName"]
    assert stack_outputs(customer_aws, stack_name)["TemplateVersion"] == "0"

    op = owner.post(f"/infra/connections/{connection['id']}/sync-template").json()
    again = owner.post(f"/infra/connections/{connection['id']}/sync-template").json()
    assert again["id"] == op["id"] or again["status"] in ("pending", "running", "succeeded")
    ended = wait_operation(owner, op["id"])
    assert ended["status"] == "succeeded", ended
    assert ended["result"]["updated"] is True and ended["result"]["previousVersion"] == "0"
    assert ended["result"]["templateVersion"] == TEMPLATE_VERSION
    assert [r["status"] for r in ended["progress"]["resources"]] == ["succeeded"] * 5
    assert ended["progress"]["stage"] == "record"
    assert stack_outputs(customer_aws, stack_name)["TemplateVersion"] == TEMPLATE_VERSION
    body = customer_aws("cloudformation").get_template(StackName=stack_name)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    sids = [s["Sid"] for s in template["Resources"]["SailplaneRole"]["Properties"]["Policies"][0]
            ["PolicyDocument"]["Statement"]]
    assert "OwnRole" in sids
    described = owner.get(f"/infra/connections/{connection['id']}").json()["item"]
    assert described["templateSyncedAt"] is not None
    assert f"version {TEMPLATE_VERSION}" in described["templateSyncMessage"]


def test_sync_of_a_missing_stack_fails_saying_why(infra_api: str, customer_aws: Any) -> None:
    """The stack was deleted after verification: the operation fails at check_stack with a clear error, the rest
    unchanged, and the connection says why."""
    owner = signup(infra_api)
    connection = verified(owner, customer_aws)
    customer_aws("cloudformation").delete_stack(StackName=connection["template"]["stackName"])
    # moto deletes the role with the stack; make the role exist again so only the stack is missing.
    customer_aws("iam").create_role(RoleName=f"SailplaneConnection-{connection['id']}",
                                    AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    op = owner.post(f"/infra/connections/{connection['id']}/sync-template").json()
    ended = wait_operation(owner, op["id"])
    assert ended["status"] == "failed", ended
    assert ended["error"]["code"] == "stack_not_found" and "deploy the template" in ended["error"]["message"]
    assert set(ended["error"]["details"]) == {"retryable", "retryAfter", "fieldErrors", "requestId", "causedBy"}
    assert [r["status"] for r in ended["progress"]["resources"]] == ["succeeded", "failed", "unchanged",
                                                                     "unchanged", "unchanged"]
    described = owner.get(f"/infra/connections/{connection['id']}").json()["item"]
    assert described["templateSyncedAt"] is None and "was not found" in described["templateSyncMessage"]


# What version 3 added to version 2's policy: the cluster stacks' statements.
V3_STATEMENTS = {"ClusterStacks", "ClusterRoles", "ClusterRolePolicies", "NodeRolePolicies", "PassClusterRole",
                 "PassNodeRole", "EksServiceLinkedRoles", "Clusters", "ClusterLookups"}


def _as_version_2(template: dict[str, Any]) -> dict[str, Any]:
    old = as_older_version(template, "2")
    policy = old["Resources"]["SailplaneRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"] = [s for s in template["Resources"]["SailplaneRole"]["Properties"]["Policies"][0]
                           ["PolicyDocument"]["Statement"] if s["Sid"] not in V3_STATEMENTS]
    return old


def test_a_version_2_connection_syncs_to_the_cluster_stacks_permissions(infra_api: str, customer_aws: Any) -> None:
    """A connection deployed from version 2 (the network stacks' permissions only) is brought to version 3 by the
    sync: its role's policy then grants the cluster stacks' permissions (tests/infra/test_connection_permissions.py
    says which)."""
    assert TEMPLATE_VERSION == "3"
    owner = signup(infra_api)
    connection = verified(owner, customer_aws, _as_version_2)
    stack_name, role_name = connection["template"]["stackName"], connection["template"]["parameters"]["RoleName"]
    iam = customer_aws("iam")

    def sids() -> set[str]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName="sailplane-connection")["PolicyDocument"]
        if isinstance(document, dict):
            return {s["Sid"] for s in document["Statement"]}
        # moto's CloudFormation stores a stack's inline policy as Python's repr of it, not JSON.
        return set(re.findall(r"""['"]Sid['"]: ['"](\w+)['"]""", unquote(document)))

    assert stack_outputs(customer_aws, stack_name)["TemplateVersion"] == "2"
    assert not sids() & V3_STATEMENTS
    op = owner.post(f"/infra/connections/{connection['id']}/sync-template").json()
    ended = wait_operation(owner, op["id"])
    assert ended["status"] == "succeeded", ended
    assert ended["result"]["previousVersion"] == "2" and ended["result"]["templateVersion"] == "3"
    assert ended["result"]["updated"] is True
    assert stack_outputs(customer_aws, stack_name)["TemplateVersion"] == "3"
    # The stack runs version 3's policy (moto's CloudFormation does not carry an update of a role's inline policy
    # over to IAM, so it is read from the stack's template).
    body = customer_aws("cloudformation").get_template(StackName=stack_name)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    statements = template["Resources"]["SailplaneRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {s["Sid"] for s in statements} >= V3_STATEMENTS
