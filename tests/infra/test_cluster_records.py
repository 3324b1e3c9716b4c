"""Provisioned cluster records against the moto server: create in an active network of a verified connection,
describe, list (per connection and all), update, delete the record; bad config answered 422 naming the field; a
network a cluster uses cannot be destroyed.

What moto does not model here: IAM policies are not enforced (the connection's role needs no ec2:DescribeInstanceTypes
permission), and its instance type list is a static catalogue, the same in every region.
"""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import REGION
from tests.infra.helpers import verified, wait_operation
from tests.support.actors import Actor, assert_error, signup


def _config(**group: Any) -> dict[str, Any]:
    return {"kubernetesVersion": "1.35",
            "systemNodeGroup": {"name": "system", "instanceTypes": [["m7g.large", "m7g.xlarge"]], "minSize": 1,
                                "maxSize": 3, "desiredSize": 2, "diskSizeGb": 100, **group},
            "publicAccessCidrs": ["203.0.113.0/24"]}


def adopted_network(owner: Actor, customer_aws: Any, conn_id: str, cidr: str = "10.70.0.0/16") -> dict[str, Any]:
    """An active network: a VPC of the customer's, adopted."""
    ec2 = customer_aws("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr.replace("0.0/16", "0.0/20"), AvailabilityZone=f"{REGION}a")
    r = owner.post(f"/infra/connections/{conn_id}/networks", json={"name": f"net-{vpc_id}",
                                                                   "providerNetworkId": vpc_id})
    assert r.status_code == 201 and r.json()["status"] == "active", r.text
    return r.json()  # type: ignore[no-any-return]


def pending_cluster(infra_api: str, customer_aws: Any, cidr: str,
                    name: str) -> tuple[Actor, str, dict[str, Any], str, str]:
    """A new owner's pending cluster in an adopted network of a verified connection: (owner, connection ID,
    network, the connection's clusters path, cluster ID)."""
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    network = adopted_network(owner, customer_aws, conn_id, cidr)
    base = f"/infra/connections/{conn_id}/clusters"
    r = owner.post(base, json={"networkId": network["id"], "name": name, "config": _config()})
    assert r.status_code == 201, r.text
    return owner, conn_id, network, base, r.json()["id"]


def test_cluster_records(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    network = adopted_network(owner, customer_aws, conn_id)
    base = f"/infra/connections/{conn_id}/clusters"

    r = owner.post(base, json={"networkId": network["id"], "name": "prod", "config": _config()})
    assert r.status_code == 201, r.text
    cluster = r.json()
    cid = cluster["id"]
    assert cluster["status"] == "pending" and cluster["connectionId"] == conn_id
    assert cluster["networkId"] == network["id"] and cluster["region"] == REGION and cluster["clusterId"] == cid
    assert cluster["config"] == _config()
    assert cluster["iacState"] == {"projectName": "sailplane-cluster",
                                   "stackName": f"sailplane-cluster-{cid.lower()}"}
    assert cluster["providerMetadata"] == {"clusterName": None, "clusterArn": None}
    assert cluster["jobRunnerRoleArn"] is None and cluster["iacOutputs"] == {}
    assert cluster["lastHealthStatus"] is None and cluster["lastHealthCheckAt"] is None

    # Describe and list: refs in items, the clusters and their connection in `included`.
    for path in (f"{base}/{cid}", f"/infra/clusters/{cid}"):
        described = owner.get(path).json()
        assert described["item"] == {"id": cid, "connectionId": conn_id}, described
        assert described["included"]["clusters"] == [cluster]
        assert [c["id"] for c in described["included"]["connections"]] == [conn_id]
        assert described["included"]["operations"] == []
    for path in (base, "/infra/clusters"):
        listed = owner.get(path).json()
        assert listed["total"] == 1 and listed["items"] == [{"id": cid, "connectionId": conn_id}], listed
    assert_error(owner.post(base, json={"networkId": network["id"], "name": "prod", "config": _config()}), 409,
                 "cluster_name_taken")

    # Update: the name always; the config while the cluster is not provisioned.
    r = owner.post(f"{base}/{cid}", json={"name": "production", "config": _config(maxSize=5, desiredSize=4)})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "production" and r.json()["config"]["systemNodeGroup"]["maxSize"] == 5
    assert owner.get(f"/infra/clusters/{cid}").json()["included"]["clusters"][0]["config"]["systemNodeGroup"][
        "desiredSize"] == 4

    # The network is used: destroyNetwork is refused, naming the cluster.
    net_path = f"/infra/connections/{conn_id}/networks/{network['id']}"
    err = assert_error(owner.delete(net_path), 409, "network_in_use")
    assert "production" in err["message"]

    # A pending cluster has nothing in the account: its record may go; then the network may be destroyed.
    r = owner.delete(f"/infra/clusters/{cid}")
    assert r.status_code == 200, r.text
    assert_error(owner.get(f"{base}/{cid}"), 404)
    assert owner.get("/infra/clusters").json()["total"] == 0
    r = owner.delete(net_path)
    assert r.status_code == 202, r.text
    assert wait_operation(owner, r.json()["id"])["status"] == "succeeded"


def test_bad_config_names_the_field(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    network = adopted_network(owner, customer_aws, conn_id, "10.71.0.0/16")
    base = f"/infra/connections/{conn_id}/clusters"

    def field(config: dict[str, Any], **extra: Any) -> set[str]:
        body = {"networkId": network["id"], "name": "c", "config": config, **extra}
        return set(assert_error(owner.post(base, json=body), 422)["details"]["fieldErrors"])

    assert field(_config(instanceTypes=[["m7g.large", "m7g.galactic"]])) == {
        "config.systemNodeGroup.instanceTypes"}
    assert field(_config(minSize=4, maxSize=3, desiredSize=3)) == {"config.systemNodeGroup.minSize"}
    assert field(_config(desiredSize=9)) == {"config.systemNodeGroup.desiredSize"}
    assert field({**_config(), "publicAccessCidrs": ["10.0.0.1/8"]}) == {"config.publicAccessCidrs"}
    assert field({**_config(), "publicAccessCidrs": ["not-a-range"]}) == {"config.publicAccessCidrs"}
    assert field({**_config(), "publicAccessCidrs": ["2001:db8::/32"]}) == {"config.publicAccessCidrs"}
    assert field({**_config(), "kubernetesVersion": "1.19"}) == {"config.kubernetesVersion"}
    assert field(_config(), region="eu-west-1") == {"region"}
    err = assert_error(owner.post(base, json={"networkId": "NOSUCHNETWORK", "name": "c", "config": _config()}), 422)
    assert "networkId" in err["details"]["fieldErrors"]
    # Nothing was recorded.
    assert owner.get(base).json()["total"] == 0

    # A network that is not active yet cannot hold a cluster.
    r = owner.post(f"/infra/connections/{conn_id}/networks", json={"name": "later", "config": {"cidr": "10.72.0.0/16"}})
    assert r.status_code == 201, r.text
    assert_error(owner.post(base, json={"networkId": r.json()["id"], "name": "c", "config": _config()}), 409,
                 "network_not_active")

    # Another organization sees none of it.
    other = signup(infra_api)
    ok = owner.post(base, json={"networkId": network["id"], "name": "c", "config": _config()})
    assert ok.status_code == 201, ok.text
    assert_error(other.get(f"/infra/clusters/{ok.json()['id']}"), 404)
    assert other.get("/infra/clusters").json()["total"] == 0
