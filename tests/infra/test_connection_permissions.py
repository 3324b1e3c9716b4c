"""The connection's role may do everything CloudFormation does with its credentials for the stacks Sailplane makes,
by AWS's own account of it, not a list of ours: each resource type's provider schema (as cfn-lint ships them, pinned in
requirements-dev.txt) names the permissions of its `create`, `read`, `update` and `delete` handlers, and every one of
them, for every resource type of the real network and cluster templates, must be allowed by the real connection
template's policy. A resource type or property added to a stack without its permissions fails here, not on a
customer's account (the moto server the other tests use does not enforce IAM).

The policy is evaluated by moto's IAM policy evaluator (`moto.iam.access_control.IAMPolicyStatement`: action and
resource wildcards, StringEquals conditions), statement by statement with two corrections to its semantics (`_allowed`).
Each permission is asked for on the resource the handler acts on where we know it (a role of the stack, our cluster,
node group, access entry, a service-linked role) with the condition keys IAM gives it (`iam:PassedToService`,
`iam:PolicyARN`, `iam:AWSServiceName`), and on `*` where we cannot know it (EC2's, KMS's).

Database-free: runs once, in the SQLite run (tests/conftest.py deselects it on PostgreSQL).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint
import pytest
from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from sailplane.infra.clusters import template as clusters
from sailplane.infra.connections import template as connections
from sailplane.infra.networks import template as networks

ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"
CONNECTION, CLUSTER, NETWORK = "01JCONNECTION0000000", "01JCLUSTER0000000000", "01JNETWORK0000000000"
HANDLERS = ("create", "read", "update", "delete")
_SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"

# Handler permissions our stacks' properties never make CloudFormation use: (resource type, why, permissions). Keep
# it short: anything else a handler lists, the role must be allowed.
_NOT_NEEDED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("AWS::EKS::Cluster", "no EncryptionConfig (secrets encryption with a KMS key)", (
        "kms:DescribeKey", "kms:CreateGrant")),
    ("AWS::EKS::Cluster", "no ComputeConfig: instance profiles are EKS Auto Mode's; a managed node group's is made "
                          "by EKS's service-linked role", (
        "iam:CreateInstanceProfile", "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile",
        "iam:GetInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile")),
    ("AWS::EKS::Nodegroup", "no LaunchTemplate: the caller's RunInstances is checked for a launch template of its "
                            "own; EKS's service-linked role makes ours and Auto Scaling launches the nodes. Granted, "
                            "the role could launch any instance in the account", ("ec2:RunInstances",)),
    ("AWS::IAM::Role", "no Policies nor PermissionsBoundary on our roles; PutRolePolicy on roles the role may create "
                       "would let it give itself anything", (
        "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary")),
    ("AWS::EC2::VPC", "no encryption control, InstanceTenancy never set", (
        "ec2:CreateVpcEncryptionControl", "ec2:ModifyVpcTenancy")),
    ("AWS::EC2::Subnet", "no IPv6 CIDR blocks", ("ec2:AssociateSubnetCidrBlock", "ec2:DisassociateSubnetCidrBlock")),
    ("AWS::EC2::VPCGatewayAttachment", "an internet gateway, no VpnGatewayId", (
        "ec2:AttachVpnGateway", "ec2:DetachVpnGateway")),
    ("AWS::EC2::EIP", "no InstanceId nor TransferAddress: the NAT gateway takes the address by its AllocationId", (
        "ec2:AssociateAddress", "ec2:DisassociateAddress", "ec2:AcceptAddressTransfer")),
    ("AWS::EC2::NatGateway", "one public address: no secondary allocations nor private addresses", (
        "ec2:AssociateNatGatewayAddress", "ec2:DisassociateNatGatewayAddress", "ec2:AssignPrivateNatGatewayAddress",
        "ec2:UnassignPrivateNatGatewayAddress")),
)
NOT_NEEDED: dict[str, set[str]] = {}
for _kind, _why, _permissions in _NOT_NEEDED:
    NOT_NEEDED.setdefault(_kind, set()).update(_permissions)


@cache
def _provider_schema(type_name: str) -> dict[str, Any]:
    ids: dict[str, str] = json.loads((_SCHEMAS / "providers" / f"{REGION}.json").read_text())
    assert type_name in ids, f"{type_name} has no resource provider schema"
    schema: dict[str, Any] = json.loads((_SCHEMAS / "resources" / f"{ids[type_name]}.json").read_text())
    return schema


def _handler_permissions(type_name: str) -> set[str]:
    handlers = _provider_schema(type_name).get("handlers") or {}
    assert set(HANDLERS) - {"update"} <= set(handlers), f"{type_name}: no handlers in its schema"
    return {p for h in HANDLERS for p in (handlers.get(h) or {}).get("permissions", [])}


def _resolve(value: Any) -> Any:
    """The policy as IAM holds it once the stack is deployed: its Fn::Sub filled in."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"]
            for name, filled in (("AWS::Partition", PARTITION), ("AWS::AccountId", ACCOUNT),
                                 ("RoleName", connections.role_name_for(CONNECTION))):
                text = text.replace(f"${{{name}}}", filled)
            assert "${" not in text, text
            return text
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _policy(template: dict[str, Any]) -> dict[str, Any]:
    role = template["Resources"]["SailplaneRole"]["Properties"]
    (policy,) = role["Policies"]
    resolved: dict[str, Any] = _resolve(policy["PolicyDocument"])
    return resolved


def _connection_policy() -> dict[str, Any]:
    return _policy(connections.template(
        CONNECTION, external_id="x" * 32, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/sailplane",
        role_name=connections.role_name_for(CONNECTION), stack_name=connections.stack_name_for(CONNECTION)))


def _allowed(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    """moto's evaluation of each statement, with two corrections: an Allow statement whose condition does not hold
    does not apply (moto answers DENIED, which would deny what another statement allows), and a condition on a key
    the request does not carry does not hold (moto takes it as holding). No statement of ours is a Deny, and every
    condition is StringEquals, the one operator moto evaluates (`test_the_policy_is_what_the_evaluator_reads`)."""
    allowed = False
    for statement in policy["Statement"]:
        keys = {k for values in (statement.get("Condition") or {}).values() for k in values}
        if not keys <= set(context):
            continue
        result = IAMPolicyStatement(statement).is_action_permitted(action, resource, None, context)
        if statement["Effect"] == "Deny" and result == PermissionResult.DENIED:
            return False
        allowed = allowed or (statement["Effect"] == "Allow" and result == PermissionResult.PERMITTED)
    return allowed


def _network_template() -> dict[str, Any]:
    return networks.template(NETWORK, "10.80.0.0/16", [f"{REGION}a", f"{REGION}b", f"{REGION}c"])


def _cluster_template() -> dict[str, Any]:
    node_group = {"name": "system", "instanceTypes": [["m7g.large", "m7g.xlarge"]], "minSize": 1, "maxSize": 3,
                  "desiredSize": 2, "diskSizeGb": 100}
    return clusters.template(
        CLUSTER, CONNECTION, connection_role_arn=_role_arn(connections.role_name_for(CONNECTION)),
        kubernetes_version="1.35", node_group=node_group, public_access_cidrs=["203.0.113.0/24"],
        subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        security_group_ids=["sg-0123456789abcdef0"])


def _arn(service: str, resource: str, *, region: str = REGION) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT}:{resource}"


def _role_arn(name: str) -> str:
    return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"


def _role_name(template: dict[str, Any], logical_id: str) -> str:
    name = template["Resources"][logical_id]["Properties"].get("RoleName")
    assert isinstance(name, str), f"{logical_id} has no RoleName: the policy could not name it"
    return name


def _requests(template: dict[str, Any], logical_id: str, permission: str) -> list[tuple[str, dict[str, str]]]:
    """The (resource, condition keys) a handler of this resource asks IAM about for `permission`: every one must be
    allowed. A condition-keyed permission is asked for each value our properties give the key (none: never asked)."""
    resource = template["Resources"][logical_id]
    kind, props = resource["Type"], resource.get("Properties", {})
    service, action = permission.split(":", 1)
    if kind == "AWS::IAM::Role":
        role = _role_arn(_role_name(template, logical_id))
        if action in ("AttachRolePolicy", "DetachRolePolicy"):
            return [(role, {"iam:PolicyARN": arn}) for arn in props.get("ManagedPolicyArns", [])]
        return [(role, {})]
    cluster_name = clusters.cluster_name_for(CLUSTER)
    if kind.startswith("AWS::EKS::"):
        if service == "iam":
            given = {"AWS::EKS::Cluster": ("ClusterRole", ["eks.amazonaws.com"], "eks.amazonaws.com"),
                     "AWS::EKS::Nodegroup": ("NodeRole", ["eks.amazonaws.com", "ec2.amazonaws.com"],
                                             "eks-nodegroup.amazonaws.com")}
            assert kind in given, f"{kind} asks for {permission}: which role?"
            role_id, passed_to, linked_service = given[kind]
            role = _role_arn(_role_name(template, role_id))
            if action == "PassRole":
                return [(role, {"iam:PassedToService": service_name}) for service_name in passed_to]
            if action == "CreateServiceLinkedRole":
                linked = {"eks.amazonaws.com": "AWSServiceRoleForAmazonEKS",
                          "eks-nodegroup.amazonaws.com": "AWSServiceRoleForAmazonEKSNodegroup"}[linked_service]
                return [(_role_arn(f"aws-service-role/{linked_service}/{linked}"),
                         {"iam:AWSServiceName": linked_service})]
            return [(role, {})]
        if service == "eks":
            # On the resource itself and on its cluster (CreateNodegroup, CreateAccessEntry are the cluster's).
            own = {"AWS::EKS::Cluster": f"cluster/{cluster_name}",
                   "AWS::EKS::Nodegroup": f"nodegroup/{cluster_name}/{props.get('NodegroupName')}/0a1b2c3d",
                   "AWS::EKS::AccessEntry": f"access-entry/{cluster_name}/role/{ACCOUNT}/some-role/0a1b2c3d"}[kind]
            return [(_arn("eks", own), {}), (_arn("eks", f"cluster/{cluster_name}"), {})]
    return [("*", {})]


def _denied(policy: dict[str, Any], template: dict[str, Any]) -> list[str]:
    denied = []
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        for permission in sorted(_handler_permissions(kind) - set(NOT_NEEDED.get(kind, {}))):
            for arn, context in _requests(template, logical_id, permission):
                if not _allowed(policy, permission, arn, context):
                    denied.append(f"{logical_id} ({kind}): {permission} on {arn} {context or ''}".rstrip())
    return denied


@pytest.mark.parametrize("stack", ["network", "cluster"])
def test_the_role_may_do_what_cloudformation_does_for_our_stacks(stack: str) -> None:
    template = _network_template() if stack == "network" else _cluster_template()
    denied = _denied(_connection_policy(), template)
    assert not denied, "the connection's role lacks:\n" + "\n".join(denied)


def test_the_role_may_update_its_own_stack() -> None:
    """syncConnectionTemplate updates the connection's stack through its role: CloudFormation reads and updates the
    role (an AWS::IAM::Role) with the role's own credentials. Not what its create and delete handlers need (the admin
    deploys and deletes the stack), nor managed policies (it has none; attaching one to itself would give it anything)
    nor a permissions boundary (none)."""
    policy = _connection_policy()
    handlers = _provider_schema("AWS::IAM::Role")["handlers"]
    needed = {p for h in ("read", "update") for p in handlers[h]["permissions"]} - {
        "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary"}
    own = _role_arn(connections.role_name_for(CONNECTION))
    denied = sorted(p for p in needed if not _allowed(policy, p, own, {}))
    assert not denied, denied


def test_the_allow_list_names_only_what_the_handlers_list() -> None:
    """An entry of NOT_NEEDED that AWS's schema no longer lists is stale: it goes."""
    for kind, permissions in NOT_NEEDED.items():
        stale = set(permissions) - _handler_permissions(kind)
        assert not stale, f"{kind}: {stale} are not handler permissions any more"


def test_what_sailplane_calls_with_the_role() -> None:
    """Beyond the stacks' resources: the calls of providers/aws.py for stacks, clusters' health and metrics."""
    policy = _connection_policy()
    name = clusters.cluster_name_for(CLUSTER)
    stack_arns = [_arn("cloudformation", f"stack/{s}/0a1b2c3d") for s in (
        networks.stack_name_for(NETWORK), clusters.stack_name_for(CLUSTER))]
    calls = [(f"cloudformation:{a}", arn) for arn in stack_arns
             for a in ("CreateStack", "DescribeStacks", "DeleteStack", "TagResource")]
    own_stack = _arn("cloudformation", f"stack/{connections.stack_name_for(CONNECTION)}/0a1b2c3d")
    calls += [("cloudformation:UpdateStack", stack_arns[1]),
              ("cloudformation:UpdateStack", own_stack),
              ("cloudformation:DescribeStacks", own_stack),
              ("iam:GetRole", _role_arn(connections.role_name_for(CONNECTION))),
              ("eks:DescribeCluster", _arn("eks", f"cluster/{name}")),
              ("eks:ListNodegroups", _arn("eks", f"cluster/{name}")),
              ("eks:DescribeNodegroup", _arn("eks", f"nodegroup/{name}/system/0a1b2c3d")),
              ("cloudwatch:GetMetricData", "*")]
    calls += [(f"ec2:{a}", "*") for a in ("DescribeRegions", "DescribeInstanceTypes", "DescribeInstanceTypeOfferings",
                                          "DescribeAvailabilityZones", "DescribeVpcs", "DescribeSubnets")]
    denied = [f"{action} on {arn}" for action, arn in calls if not _allowed(policy, action, arn, {})]
    assert not denied, denied


def test_the_role_may_not_reach_past_our_resources() -> None:
    """The scoping holds: not another role, nor another service, policy, stack or cluster (and so the evaluator does
    refuse)."""
    policy = _connection_policy()
    template = _cluster_template()
    cluster_role, node_role = (_role_arn(_role_name(template, r)) for r in ("ClusterRole", "NodeRole"))
    job_runner = _role_arn(_role_name(template, "JobRunnerRole"))
    admin, cni, eks_cluster = (f"arn:{PARTITION}:iam::aws:policy/{p}" for p in (
        "AdministratorAccess", "AmazonEKS_CNI_Policy", "AmazonEKSClusterPolicy"))
    refused = [
        ("iam:CreateRole", _role_arn("admin"), {}),
        ("iam:CreateRole", _role_arn(f"sailplane-{'01JOTHERCONNECTION00'.lower()}-x-cluster"), {}),
        ("iam:DeleteRole", _role_arn(connections.role_name_for(CONNECTION)), {}),
        ("iam:PutRolePolicy", cluster_role, {}),
        ("iam:AttachRolePolicy", cluster_role, {"iam:PolicyARN": admin}),
        ("iam:AttachRolePolicy", node_role, {"iam:PolicyARN": admin}),
        ("iam:AttachRolePolicy", cluster_role, {"iam:PolicyARN": cni}),
        ("iam:AttachRolePolicy", job_runner, {"iam:PolicyARN": eks_cluster}),
        ("iam:AttachRolePolicy", _role_arn(connections.role_name_for(CONNECTION)), {"iam:PolicyARN": admin}),
        ("iam:PassRole", cluster_role, {"iam:PassedToService": "ec2.amazonaws.com"}),
        ("iam:PassRole", cluster_role, {}),
        ("iam:PassRole", node_role, {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("iam:PassRole", job_runner, {"iam:PassedToService": "pods.eks.amazonaws.com"}),
        ("iam:PassRole", _role_arn("admin"), {"iam:PassedToService": "eks.amazonaws.com"}),
        ("iam:CreateServiceLinkedRole", _role_arn("aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"),
         {"iam:AWSServiceName": "rds.amazonaws.com"}),
        ("eks:CreateCluster", _arn("eks", "cluster/production"), {}),
        ("eks:CreateAccessEntry", _arn("eks", "cluster/production"), {}),
        ("cloudformation:CreateStack", _arn("cloudformation", "stack/production/0a1b2c3d"), {}),
        ("cloudformation:DeleteStack", _arn("cloudformation", "stack/production/0a1b2c3d"), {}),
        ("ec2:RunInstances", "*", {}),
        ("ec2:TerminateInstances", "*", {}),
        ("s3:GetObject", "*", {}),
    ]
    allowed = [f"{a} on {r} {c}" for a, r, c in refused if _allowed(policy, a, r, c)]
    assert not allowed, allowed


def test_the_policy_is_what_the_evaluator_reads() -> None:
    """What `_allowed` relies on: Allow statements only, StringEquals conditions only, Fn::Sub resolved; and the
    policy fits IAM's limit on a role's inline policies (10,240 characters, whitespace not counted)."""
    policy = _connection_policy()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", statement
        assert set(statement.get("Condition") or {}) <= {"StringEquals"}, statement
    assert len(json.dumps(policy, separators=(",", ":"))) < 10_240


def test_every_role_of_a_cluster_stack_has_the_prefix_the_policy_names() -> None:
    template = _cluster_template()
    roles = [r for r, body in template["Resources"].items() if body["Type"] == "AWS::IAM::Role"]
    assert roles == ["ClusterRole", "NodeRole", "JobRunnerRole"]
    for logical_id in roles:
        name = _role_name(template, logical_id)
        assert name.startswith(clusters.role_name_prefix(CONNECTION)) and len(name) <= 64, name
