"""Who may use a provisioned cluster's Kubernetes API, against the moto server: the cluster stack's EKS access entries
(`clusters.template`). After provisionCluster, EKS (the customer's admin's boto3) lists exactly two entries: the
connection's role with AmazonEKSClusterAdminPolicy on the cluster, the job runner's role with AmazonEKSEditPolicy in
the workloads' namespace; the cluster takes access entries only (`API`) and gave its creator none of its own. An
update (updateProvisionedCluster) keeps the same entries; destroying the cluster deletes them with its stack.

What moto does not model, and these tests therefore cannot show: moto has no access entries at all; the tests' moto
server adds them (tests/infra/moto_server.py: `AWS::EKS::AccessEntry`, the cluster's `AccessConfig`, the creator's
bootstrap entry, ListAccessEntries / DescribeAccessEntry / ListAssociatedAccessPolicies). Nothing enforces them: the
Kubernetes API stand-in (tests/infra/kube_standin.py) checks a token's form, not its principal's entries.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from sailplane.infra.clusters.template import (
    CONNECTION_ACCESS_POLICY,
    JOB_RUNNER_ACCESS_POLICY,
    WORKLOAD_NAMESPACE,
    job_runner_role_name,
    template,
)
from sailplane.infra.connections.template import role_name_for
from tests.infra.conftest import ACCOUNT, REGION
from tests.infra.helpers import verified, wait_operation
from tests.infra.test_cluster_records import _config, pending_cluster
from tests.infra.test_cluster_update import latest_operation
from tests.support.actors import signup


def access(eks: Any, cluster: str) -> dict[str, dict[str, Any]]:
    """The cluster's access entries as EKS describes them, each with its associated policies (`policies`)."""
    found: dict[str, dict[str, Any]] = {}
    for principal in eks.list_access_entries(clusterName=cluster)["accessEntries"]:
        entry = eks.describe_access_entry(clusterName=cluster, principalArn=principal)["accessEntry"]
        entry["policies"] = eks.list_associated_access_policies(
            clusterName=cluster, principalArn=principal)["associatedAccessPolicies"]
        found[principal] = entry
    return found


def test_the_stack_grants_the_connection_and_the_job_runner_and_nothing_else(infra_api: str,
                                                                              customer_aws: Any) -> None:
    owner, conn_id, _network, base, cid = pending_cluster(infra_api, customer_aws, "10.95.0.0/16", "access")
    connection_role = f"arn:aws:iam::{ACCOUNT}:role/{role_name_for(conn_id)}"
    op = owner.post(f"{base}/{cid}/provision")
    assert op.status_code == 202, op.text
    assert wait_operation(owner, op.json()["id"])["status"] == "succeeded"
    item = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]
    job_runner = item["jobRunnerRoleArn"]
    name = f"sailplane-{cid.lower()}"
    eks = customer_aws("eks")

    cluster = eks.describe_cluster(name=name)["cluster"]
    assert cluster["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    entries = access(eks, name)
    assert set(entries) == {connection_role, job_runner}, entries
    admin, runner = entries[connection_role], entries[job_runner]
    assert [(p["policyArn"], p["accessScope"]) for p in admin["policies"]] == [
        (CONNECTION_ACCESS_POLICY, {"type": "cluster", "namespaces": []})]
    assert [(p["policyArn"], p["accessScope"]) for p in runner["policies"]] == [
        (JOB_RUNNER_ACCESS_POLICY, {"type": "namespace", "namespaces": [WORKLOAD_NAMESPACE]})]
    assert CONNECTION_ACCESS_POLICY == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert JOB_RUNNER_ACCESS_POLICY == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
    assert WORKLOAD_NAMESPACE == "sailplane-workloads"
    for principal, entry in entries.items():
        role = principal.rsplit("/", 1)[1]
        assert entry["type"] == "STANDARD" and entry["kubernetesGroups"] == [], entry
        assert entry["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{{{{SessionName}}}}"
        assert entry["accessEntryArn"].startswith(f"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/{name}/role/")
        assert entry["tags"] == {"sailplane:cluster": cid}
    # The only cluster admin is the connection's role; the job runner is no admin anywhere.
    assert eks.list_access_entries(clusterName=name, associatedPolicyArn=CONNECTION_ACCESS_POLICY)[
        "accessEntries"] == [connection_role]
    # They are the stack's: CloudFormation lists them, so they change and go with it.
    stack_name = f"sailplane-cluster-{cid.lower()}"
    cfn = customer_aws("cloudformation")
    resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName=stack_name)[
        "StackResources"]}
    assert resources["ConnectionAccess"]["ResourceType"] == "AWS::EKS::AccessEntry"
    assert resources["ConnectionAccess"]["PhysicalResourceId"] == f"{name}|{connection_role}"
    assert resources["JobRunnerAccess"]["PhysicalResourceId"] == f"{name}|{job_runner}"

    # An update (the node group's sizes, the public access) keeps the same entries, untouched.
    new = {**_config(maxSize=4, desiredSize=3), "publicAccessCidrs": ["198.51.100.0/24"]}
    r = owner.post(f"{base}/{cid}", json={"config": new})
    assert r.status_code == 200 and r.json()["status"] == "updating", r.text
    ended = wait_operation(owner, latest_operation(owner, cid)["id"])
    assert ended["status"] == "succeeded", ended
    assert cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert eks.describe_nodegroup(clusterName=name, nodegroupName="system")["nodegroup"]["scalingConfig"][
        "desiredSize"] == 3
    assert access(eks, name) == entries
    assert eks.describe_cluster(name=name)["cluster"]["accessConfig"] == cluster["accessConfig"]

    # Destroyed: the cluster and its entries are gone with the stack.
    op = owner.delete(f"{base}/{cid}")
    assert op.status_code == 202, op.text
    assert wait_operation(owner, op.json()["id"])["status"] == "succeeded"
    assert name not in eks.list_clusters()["clusters"]
    with pytest.raises(ClientError) as gone:
        eks.list_access_entries(clusterName=name)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert all(s["StackName"] != stack_name for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE",
                                                                                          "UPDATE_COMPLETE"])[
        "StackSummaries"])


def _stack(cfn: Any, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """CreateStack's result: the stack, or the error of a resource moto could not make (moto fails the CreateStack
    call itself, with the EKS error's JSON in place of CloudFormation's XML, which botocore cannot read)."""
    try:
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_NAMED_IAM"])
    except (ClientError, ResponseParserError) as exc:
        return {"error": str(exc)}
    return dict(cfn.describe_stacks(StackName=name)["Stacks"][0])


def test_why_the_creator_gets_no_bootstrap_entry(infra_api: str, customer_aws: Any, moto_url: str) -> None:
    """CloudFormation makes the cluster with its caller's credentials, the connection's role: left at its default,
    BootstrapClusterCreatorAdminPermissions gives that role an admin entry outside the stack, and the stack's own
    entry for it then fails, as on EKS (the principal has an entry already). The tests' moto server models that."""
    owner = signup(infra_api)
    connection = verified(owner, customer_aws)
    role_arn = connection["providerConfig"]["roleArn"]
    # A session of the connection's role, as Sailplane assumes it.
    creds = customer_aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="sailplane", ExternalId=connection[
        "template"]["parameters"]["ExternalId"])["Credentials"]
    as_role = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                    aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"], region_name=REGION)
    cfn = as_role.client("cloudformation", endpoint_url=moto_url)
    eks = as_role.client("eks", endpoint_url=moto_url)

    def stack(cluster_id: str, *, bootstrap_default: bool = False, connection_entry: bool = True) -> dict[str, Any]:
        body = template(cluster_id, connection["id"], connection_role_arn=role_arn, kubernetes_version="1.35",
                        node_group=_config()["systemNodeGroup"], public_access_cidrs=[],
                        subnet_ids=["subnet-0123456789abcdef0"], security_group_ids=[])
        if bootstrap_default:
            del body["Resources"]["Cluster"]["Properties"]["AccessConfig"]["BootstrapClusterCreatorAdminPermissions"]
        if not connection_entry:
            del body["Resources"]["ConnectionAccess"]
        return _stack(cfn, f"sailplane-cluster-{cluster_id.lower()}", body)

    made = stack("BOOTSTRAPOFF")
    assert made.get("StackStatus") == "CREATE_COMPLETE", made
    job_runner = f"arn:aws:iam::{ACCOUNT}:role/{job_runner_role_name(connection['id'], 'BOOTSTRAPOFF')}"
    assert set(access(eks, "sailplane-bootstrapoff")) == {role_arn, job_runner}

    # EKS's default: the creator's own entry, then the stack's entry for the same role fails.
    failed = stack("BOOTSTRAPON", bootstrap_default=True)
    assert "already in use" in json.dumps(failed), failed
    # Without the stack's entry, the creator's is the one EKS made: cluster admin, outside the stack.
    made = stack("BOOTSTRAPONLY", bootstrap_default=True, connection_entry=False)
    assert made.get("StackStatus") == "CREATE_COMPLETE", made
    entries = access(eks, "sailplane-bootstraponly")
    assert [p["policyArn"] for p in entries[role_arn]["policies"]] == [CONNECTION_ACCESS_POLICY]
    assert "ConnectionAccess" not in {r["LogicalResourceId"] for r in cfn.describe_stack_resources(
        StackName="sailplane-cluster-bootstraponly")["StackResources"]}
    for cluster_id in ("BOOTSTRAPOFF", "BOOTSTRAPONLY"):
        cfn.delete_stack(StackName=f"sailplane-cluster-{cluster_id.lower()}")
