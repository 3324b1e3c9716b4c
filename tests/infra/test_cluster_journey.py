"""A provisioned cluster against the moto server: create → provisionCluster (a CloudFormation stack with the EKS
cluster, its system node group, the cluster and node roles and the job runner's role) → active with its endpoint,
ARN and jobRunnerRoleArn → destroyProvisionedCluster → delete the record.

What moto does not model, and these tests therefore cannot show: moto's CloudFormation has no AWS::EKS::Cluster nor
AWS::EKS::Nodegroup (the tests' moto server adds both on moto's EKS backend, tests/infra/moto_server.py); an EKS
cluster is ACTIVE at once (no ten-minute wait, no nodes that join, no API server behind the endpoint); client
request tokens are ignored; IAM policies (managed policy attachments, the trust policies) are not enforced.
"""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import REGION
from tests.infra.helpers import wait_operation
from tests.infra.test_cluster_records import pending_cluster
from tests.support.actors import assert_error


def test_cluster_journey(infra_api: str, customer_aws: Any) -> None:
    owner, conn_id, network, base, cid = pending_cluster(infra_api, customer_aws, "10.80.0.0/16", "prod")
    stack_name = f"sailplane-cluster-{cid.lower()}"
    assert_error(owner.delete(f"{base}/{cid}"), 409, "cluster_not_destroyable")

    op = owner.post(f"{base}/{cid}/provision")
    assert op.status_code == 202, op.text
    assert op.json()["operation"] == "provision_cluster" and op.json()["resourceType"] == "cluster"
    ended = wait_operation(owner, op.json()["id"])
    assert ended["status"] == "succeeded", ended
    assert [s["status"] for s in ended["progress"]["resources"]] == ["succeeded"] * 4

    item = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]
    assert item["status"] == "active", item
    name = f"sailplane-{cid.lower()}"
    # What the customer's admin sees in their account: the stack, the EKS cluster and node group, the roles.
    eks = customer_aws("eks")
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert item["providerMetadata"] == {"clusterName": name, "clusterArn": cluster["arn"]}
    assert cluster["version"] == "1.35" and item["iacOutputs"]["ClusterEndpoint"] == cluster["endpoint"]
    assert cluster["resourcesVpcConfig"]["subnetIds"] == network["iacOutputs"]["SubnetIds"].split(",")
    assert cluster["resourcesVpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    group = eks.describe_nodegroup(clusterName=name, nodegroupName="system")["nodegroup"]
    assert group["scalingConfig"] == {"minSize": 1, "maxSize": 3, "desiredSize": 2}
    assert group["instanceTypes"] == ["m7g.large", "m7g.xlarge"] and group["diskSize"] == 100
    role_name = item["jobRunnerRoleArn"].rsplit("/", 1)[1]
    assert role_name == f"sailplane-{conn_id.lower()}-{cid.lower()}-jr"
    role = customer_aws("iam").get_role(RoleName=role_name)["Role"]
    assert role["Arn"] == item["jobRunnerRoleArn"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    stack = customer_aws("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"

    # The kubeconfig: the endpoint and CA of the cluster, and a user that runs `aws eks get-token` (no secret).
    kube = owner.get(f"{base}/{cid}/kubeconfig")
    assert kube.status_code == 200, kube.text
    assert kube.json()["clusterEndpoint"] == cluster["endpoint"]
    assert kube.json()["clusterCertificateAuthority"] == cluster["certificateAuthority"]["data"]
    doc = json.loads(kube.json()["kubeconfig"])
    assert doc["current-context"] == cluster["arn"]
    assert doc["clusters"] == [{"name": cluster["arn"], "cluster": {
        "server": cluster["endpoint"], "certificate-authority-data": cluster["certificateAuthority"]["data"]}}]
    [user] = doc["users"]
    assert set(user["user"]) == {"exec"}  # no token, password, client key or certificate
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"] == ["--region", REGION, "eks", "get-token", "--cluster-name", name,
                                            "--output", "json"]

    # Active: it is one of the clusters workloads may name (/me/clusters), but nothing runs there yet (409). (This
    # server runs no compute, so createSession answers 503 before it looks: a session's inline config goes through
    # the same check as createWorkloadConfig's.)
    mine = owner.get("/me/clusters").json()
    assert {"id": cid, "externalClusterId": cid, "connectionId": conn_id} in mine["items"], mine
    assert [c["id"] for c in mine["included"]["externalClusters"]] == [cid]
    assert owner.get(f"/me/clusters/{cid}").json()["included"]["clusters"][0]["externalStatus"] == "active"
    team = owner.post("/org/teams", json={"name": "analysts"})
    assert team.status_code == 201, team.text
    team_id = team.json()["team"]["id"]
    # A new cluster is shared with no team (tests/infra/test_cluster_teams.py): the admin shares it first.
    assert owner.post(f"/infra/clusters/{cid}/teams", json={"teamIds": [team_id]}).status_code == 200
    for path, body in (("/workloads/compute-configs", {"name": "eks", "teamId": team_id, "clusterId": cid}),
                       ("/workloads/jobs", {"jobKey": "eks", "clusterId": cid, "teamIds": [team_id],
                                            "config": {"sql": {"source": "SELECT 1"}}})):
        err = assert_error(owner.post(path, json=body), 409, "compute_backend_unavailable")
        assert "Kubernetes compute backend is not available yet" in err["message"], (path, err)

    # Provisioned: the record cannot go, the network cannot be destroyed (its config changes in place:
    # test_cluster_update).
    assert_error(owner.delete(f"/infra/clusters/{cid}"), 409, "cluster_not_destroyed")
    assert_error(owner.delete(f"/infra/connections/{conn_id}/networks/{network['id']}"), 409, "network_in_use")
    # Provisioning again is refused; an active cluster has nothing to provision.
    assert_error(owner.post(f"{base}/{cid}/provision"), 409, "cluster_not_provisionable")

    op = owner.delete(f"{base}/{cid}")
    assert op.status_code == 202, op.text
    ended = wait_operation(owner, op.json()["id"])
    assert ended["status"] == "succeeded", ended
    assert owner.get(f"/infra/clusters/{cid}").json()["included"]["clusters"][0]["status"] == "destroyed"
    assert_error(owner.get(f"{base}/{cid}/kubeconfig"), 409, "cluster_not_active")
    assert name not in eks.list_clusters()["clusters"]
    assert customer_aws("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"] \
        == [s for s in customer_aws("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])[
            "StackSummaries"] if s["StackName"] != stack_name]
    # Its record still names the network: the network stays until the record is deleted.
    assert_error(owner.delete(f"/infra/connections/{conn_id}/networks/{network['id']}"), 409, "network_in_use")
    assert owner.delete(f"/infra/clusters/{cid}").status_code == 200
    assert owner.delete(f"/infra/connections/{conn_id}/networks/{network['id']}").status_code == 202
