"""Networks against the moto server: create → provision (a CloudFormation stack in the customer's account) →
describe with its outputs → destroy → delete the record; adopting an existing VPC; bad input (4xx naming the
field); the refusals of the lifecycle (409).

What moto does not model, and these tests therefore cannot show: CloudFormation runs synchronously (a stack is
CREATE_COMPLETE as CreateStack answers, so the operation's waiting step never waits); client request tokens are
ignored; a template's subnet route table associations are not listed on the tables, and its MapPublicIpOnLaunch is
not applied to the subnet (the template is checked instead); IAM policies are not enforced (the connection's role
needs no CloudFormation or EC2 permission here); a NAT gateway is a record, not a router. moto cannot delete a
route table of a stack: the tests' moto server adds that delete (tests/infra/moto_server.py), as AWS does it.
"""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import REGION
from tests.infra.helpers import create_connection, verified, wait_operation
from tests.support.actors import Actor, assert_error, signup


def _vpcs_tagged(customer_aws: Any, network_id: str) -> list[dict[str, Any]]:
    found = customer_aws("ec2").describe_vpcs(Filters=[{"Name": "tag:sailplane:network", "Values": [network_id]}])
    return list(found["Vpcs"])


def _create(owner: Actor, connection_id: str, name: str, cidr: str, **extra: Any) -> dict[str, Any]:
    r = owner.post(f"/infra/connections/{connection_id}/networks", json={"name": name, "config": {"cidr": cidr},
                                                                         **extra})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_network_journey(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    connection = verified(owner, customer_aws)
    conn_id = connection["id"]
    base = f"/infra/connections/{conn_id}/networks"

    network = _create(owner, conn_id, "prod", "10.40.0.0/16")
    net_id = network["id"]
    stack_name = f"sailplane-network-{net_id.lower()}"
    assert network["status"] == "pending" and network["connectionId"] == conn_id and network["region"] == REGION
    assert network["config"] == {"cidr": "10.40.0.0/16"} and network["providerNetworkId"] is None
    assert network["iacState"] == {"projectName": "sailplane-network", "stackName": stack_name}
    assert network["iacOutputs"] == {}
    assert owner.get("/infra/networks").json()["total"] == 1
    listed = owner.get(base).json()
    assert [n["id"] for n in listed["items"]] == [net_id] and listed["included"]["operations"] == []
    # Nothing of ours is in the account yet; destroying a pending network is refused, deleting its record is not.
    assert _vpcs_tagged(customer_aws, net_id) == []
    assert_error(owner.delete(f"{base}/{net_id}"), 409, "network_not_destroyable")

    op = owner.post(f"{base}/{net_id}/provision")
    assert op.status_code == 202, op.text
    op_id = op.json()["id"]
    assert op.json()["operation"] == "provision_network" and op.json()["resourceType"] == "network"
    assert [r["name"] for r in op.json()["progress"]["resources"]] == ["plan", "create_stack", "wait_stack", "record"]
    ended = wait_operation(owner, op_id)
    assert ended["status"] == "succeeded", ended
    assert [r["status"] for r in ended["progress"]["resources"]] == ["succeeded"] * 4
    outputs = ended["result"]["iacOutputs"]

    described = owner.get(f"{base}/{net_id}").json()
    item = described["item"]
    assert item["status"] == "active", item
    assert item["iacOutputs"] == outputs and item["providerNetworkId"] == outputs["VpcId"]
    assert set(outputs) == {"VpcId", "VpcCidr", "PublicSubnetIds", "PrivateSubnetIds", "SecurityGroupId",
                            "NatGatewayId", "AvailabilityZones"}
    assert described["included"]["operations"][0]["id"] == op_id

    # What the customer's admin sees in their account: the stack, and the VPC it built.
    stack = customer_aws("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["StackId"] == ended["result"]["stackArn"]
    ec2 = customer_aws("ec2")
    [vpc] = _vpcs_tagged(customer_aws, net_id)
    assert vpc["VpcId"] == outputs["VpcId"] and vpc["CidrBlock"] == "10.40.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    public, private = outputs["PublicSubnetIds"].split(","), outputs["PrivateSubnetIds"].split(",")
    assert {s["SubnetId"] for s in subnets} == set(public + private) and len(public) == len(private) >= 2
    assert len({s["AvailabilityZone"] for s in subnets}) >= 2
    # moto does not apply a template's MapPublicIpOnLaunch to the subnet: the template says it (PublicSubnet*).
    body = customer_aws("cloudformation").get_template(StackName=stack_name)["TemplateBody"]
    resources = (json.loads(body) if isinstance(body, str) else body)["Resources"]
    assert all(r["Properties"]["MapPublicIpOnLaunch"] for k, r in resources.items()
               if k.startswith("PublicSubnet") and r["Type"] == "AWS::EC2::Subnet")
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    # Routing: a public table whose default route is the internet gateway, a private one through the NAT gateway.
    # (moto does not list a stack's SubnetRouteTableAssociations on the tables: the template shows which is whose.)
    defaults = [r for t in tables for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert sorted(r.get("GatewayId", "")[:4] or r.get("NatGatewayId") for r in defaults) == sorted(
        ["igw-", outputs["NatGatewayId"]])
    associations = {r["Properties"]["SubnetId"]["Ref"]: r["Properties"]["RouteTableId"]["Ref"]
                    for r in resources.values() if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"}
    assert {k for k, v in associations.items() if v == "PublicRouteTable"} == {f"PublicSubnet{i + 1}"
                                                                              for i in range(len(public))}
    assert {k for k, v in associations.items() if v == "PrivateRouteTable"} == {f"PrivateSubnet{i + 1}"
                                                                               for i in range(len(private))}
    [group] = ec2.describe_security_groups(GroupIds=[outputs["SecurityGroupId"]])["SecurityGroups"]
    assert group["VpcId"] == vpc["VpcId"]

    # While it exists: no second provisioning, no record deletion, no connection deletion.
    assert_error(owner.post(f"{base}/{net_id}/provision"), 409, "network_not_provisionable")
    assert_error(owner.delete(f"/infra/networks/{net_id}"), 409, "network_not_destroyed")
    assert_error(owner.delete(f"/infra/connections/{conn_id}"), 409, "connection_in_use")
    renamed = owner.patch(f"{base}/{net_id}", json={"name": "production"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "production"
    assert_error(owner.patch(f"{base}/{net_id}", json={"config": {"cidr": "10.41.0.0/16"}}), 409,
                 "network_provisioned")

    destroy = owner.delete(f"{base}/{net_id}")
    assert destroy.status_code == 202, destroy.text
    assert destroy.json()["operation"] == "destroy_network"
    ended = wait_operation(owner, destroy.json()["id"])
    assert ended["status"] == "succeeded", ended
    item = owner.get(f"{base}/{net_id}").json()["item"]
    assert item["status"] == "destroyed" and item["providerNetworkId"] is None and item["iacOutputs"] == {}
    assert _vpcs_tagged(customer_aws, net_id) == []
    assert ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": public + private}])["Subnets"] == []
    stacks = customer_aws("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == stack_name] == ["DELETE_COMPLETE"]

    r = owner.delete(f"/infra/networks/{net_id}")
    assert r.status_code == 200, r.text
    assert_error(owner.get(f"{base}/{net_id}"), 404, "not_found")
    assert owner.get("/infra/networks").json()["total"] == 0
    assert owner.delete(f"/infra/connections/{conn_id}").status_code == 200


def test_adopting_an_existing_vpc(infra_api: str, customer_aws: Any) -> None:
    """A VPC the customer made: read through the connection's role, active at once; never provisioned, and
    destroying the network leaves it in the account."""
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    ec2 = customer_aws("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.60.0.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]
    base = f"/infra/connections/{conn_id}/networks"

    r = owner.post(base, json={"name": "theirs", "providerNetworkId": vpc_id})
    assert r.status_code == 201, r.text
    network = r.json()
    assert network["status"] == "active" and network["providerNetworkId"] == vpc_id
    assert network["config"] == {"cidr": "10.60.0.0/16"} and network["iacState"] is None
    assert network["iacOutputs"]["VpcId"] == vpc_id and network["iacOutputs"]["SubnetIds"] == subnet["SubnetId"]
    # Its range counts: another network may not overlap it.
    assert_error(owner.post(base, json={"name": "x", "config": {"cidr": "10.60.16.0/20"}}), 409,
                 "network_cidr_overlap")
    err = assert_error(owner.post(base, json={"name": "y", "providerNetworkId": vpc_id,
                                              "config": {"cidr": "10.61.0.0/16"}}), 422)
    assert "config.cidr" in err["details"]["fieldErrors"]
    err = assert_error(owner.post(base, json={"name": "z", "providerNetworkId": "vpc-0123456789abcdef0"}), 422)
    assert "providerNetworkId" in err["details"]["fieldErrors"]
    assert_error(owner.post(f"{base}/{network['id']}/provision"), 409, "network_adopted")

    ended = wait_operation(owner, owner.delete(f"{base}/{network['id']}").json()["id"])
    assert ended["status"] == "succeeded" and ended["result"]["updated"] is False, ended
    assert [r["status"] for r in ended["progress"]["resources"]] == ["succeeded", "unchanged", "unchanged",
                                                                     "unchanged"]
    assert owner.get(f"{base}/{network['id']}").json()["item"]["status"] == "destroyed"
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]] == [vpc_id]
    assert owner.delete(f"/infra/networks/{network['id']}").status_code == 200


def test_bad_input_names_the_field(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    base = f"/infra/connections/{conn_id}/networks"
    for cidr in ("10.0.0.0/8", "10.0.0.0/25", "8.8.0.0/16", "10.0.0.1/16", "not-a-cidr", "fd00:1::/64",
                 "10.0.0.0/33", "172.32.0.0/16"):
        err = assert_error(owner.post(base, json={"name": "n", "config": {"cidr": cidr}}), 422)
        assert "config.cidr" in err["details"]["fieldErrors"], (cidr, err)
    for body, field in [({"config": {"cidr": "10.1.0.0/16"}}, "name"), ({"name": "n"}, "config"),
                        ({"name": "n", "config": {}}, "config.cidr"),
                        ({"name": "n", "config": {"cidr": "10.1.0.0/16"}, "region": "mars-north-1"}, "region"),
                        ({"name": "n", "config": {"cidr": "10.1.0.0/16"}, "region": "nowhere-east-1"}, "region"),
                        ({"name": "n", "providerNetworkId": "subnet-1234"}, "providerNetworkId")]:
        err = assert_error(owner.post(base, json=body), 422)
        assert field in err["details"]["fieldErrors"], (body, err)
    assert_error(owner.post(base, json={"name": "n", "config": {"cidr": "10.1.0.0/16"}, "extra": 1}), 422)

    first = _create(owner, conn_id, "first", "10.50.0.0/16")
    for cidr in ("10.50.128.0/20", "10.50.0.0/16", "10.50.255.0/24"):
        err = assert_error(owner.post(base, json={"name": f"o-{cidr}", "config": {"cidr": cidr}}), 409,
                           "network_cidr_overlap")
        assert "config.cidr" in err["details"]["fieldErrors"] and "first" in err["message"]
    assert_error(owner.post(base, json={"name": "first", "config": {"cidr": "10.51.0.0/16"}}), 409,
                 "network_name_taken")
    second = _create(owner, conn_id, "second", "10.51.0.0/16")
    assert_error(owner.patch(f"{base}/{second['id']}", json={"config": {"cidr": "10.50.0.0/24"}}), 409,
                 "network_cidr_overlap")
    assert_error(owner.patch(f"{base}/{second['id']}", json={"name": "first"}), 409, "network_name_taken")
    moved = owner.patch(f"{base}/{second['id']}", json={"config": {"cidr": "192.168.0.0/24"}})
    assert moved.status_code == 200 and moved.json()["config"]["cidr"] == "192.168.0.0/24"
    # Another connection's networks do not count.
    other = verified(owner, customer_aws)["id"]
    _create(owner, other, "first", "10.50.0.0/16")

    assert_error(owner.post("/infra/connections/NOSUCHCONNECTION/networks",
                            json={"name": "n", "config": {"cidr": "10.9.0.0/16"}}), 404, "not_found")
    assert_error(owner.get("/infra/connections/NOSUCHCONNECTION/networks"), 404, "not_found")
    assert_error(owner.get(f"/infra/connections/{other}/networks/{first['id']}"), 404, "not_found")
    assert_error(owner.post(f"/infra/connections/{other}/networks/{first['id']}/provision"), 404, "not_found")
    assert_error(owner.get(f"{base}/NOSUCHNETWORK"), 404, "not_found")
    assert_error(owner.delete("/infra/networks/NOSUCHNETWORK"), 404, "not_found")
    assert_error(owner.get(f"{base}/bad-id"), 400)

    # A connection not verified yet cannot provision (nor adopt).
    pending = create_connection(owner)["id"]
    unverified = _create(owner, pending, "early", "10.70.0.0/16")
    assert_error(owner.post(f"/infra/connections/{pending}/networks/{unverified['id']}/provision"), 409,
                 "connection_not_verified")
    assert_error(owner.post(f"/infra/connections/{pending}/networks",
                            json={"name": "a", "providerNetworkId": "vpc-0123456789abcdef0"}), 409,
                 "connection_not_verified")
    # A pending network's record goes at once (nothing was built).
    assert owner.delete(f"/infra/networks/{unverified['id']}").status_code == 200
