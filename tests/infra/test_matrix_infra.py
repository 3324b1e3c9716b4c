"""The authorization matrix of connections, networks, provisioned clusters and operations (tests.authz.matrix), on
the infrastructure test server (AWS is the moto server): CanManageInfrastructure only, so the Owner and Admin
roles; members of any team role and service accounts without that permission get 403; another organization gets
404 for this organization's connections, networks, clusters and operations (and its own empty lists)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sailplane.kit.ids import new_id
from tests.authz.matrix import CALLERS, TEAM1, Case, Context, by_caller, lists, once, run_cases
from tests.infra.conftest import ACCOUNT, REGION
from tests.support.waiting import wait_until
from tests.support.world import World, build_world

ADMINS = ("owner", "admin")
IN_ORG = ("member_t1", "viewer_t1", "teamadmin_t1", "member_t2", "sa_with_policy", "sa_without_policy")
_MOTO: dict[str, str] = {}


def _create(w: World) -> dict[str, Any]:
    r = w.owner.post("/infra/connections", json={"name": f"m-{new_id()}", "providerConfig": {
        "accountId": ACCOUNT, "region": REGION}})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _verified(w: World) -> Context:
    connection = _create(w)
    template = w.owner.get(f"/infra/connections/{connection['id']}/template/download").json()
    boto3.session.Session().client("cloudformation", region_name=REGION, endpoint_url=_MOTO["url"]).create_stack(
        StackName=connection["template"]["stackName"], TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_NAMED_IAM"])
    assert w.owner.post(f"/infra/connections/{connection['id']}/verify").json()["status"] == "active"
    op = w.owner.post(f"/infra/connections/{connection['id']}/sync-template").json()
    wait_until(lambda: w.owner.get(f"/operations/{op['id']}").json()["status"] == "succeeded", timeout=30)
    return {"connection": connection["id"], "operation": op["id"]}


def _fresh(w: World) -> Context:
    return {"connection": _create(w)["id"]}


shared = once(_verified)
_RANGES = itertools.count(1000)  # each network of the matrix its own range: 10.x.y.0/24 (none overlap)


def _cidr() -> str:
    n = next(_RANGES)
    return f"10.{n // 256}.{n % 256}.0/24"


def _network(w: World, **body: Any) -> Context:
    context = shared(w)
    r = w.owner.post(f"/infra/connections/{context['connection']}/networks",
                     json={"name": f"n-{new_id()}", **(body or {"config": {"cidr": _cidr()}})})
    assert r.status_code == 201, r.text
    return {**context, "network": r.json()["id"]}


def _adopted(w: World) -> Context:
    """An active network (an adopted VPC): destroying it is one quick operation that leaves the VPC alone."""
    ec2 = boto3.session.Session().client("ec2", region_name=REGION, endpoint_url=_MOTO["url"])
    return _network(w, providerNetworkId=ec2.create_vpc(CidrBlock=_cidr())["Vpc"]["VpcId"])


shared_network = once(_network)


def _active_network(w: World) -> Context:
    """An adopted VPC with a subnet: where a cluster's nodes go."""
    ec2 = boto3.session.Session().client("ec2", region_name=REGION, endpoint_url=_MOTO["url"])
    cidr = _cidr()
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{REGION}a")
    return _network(w, providerNetworkId=vpc_id)


shared_active_network = once(_active_network)
_CLUSTER_CONFIG = {"kubernetesVersion": "1.35", "systemNodeGroup": {"instanceTypes": [["m5.large"]]}}


def _cluster(w: World) -> Context:
    """A pending cluster in an active network (nothing of it in the account yet)."""
    context = shared_active_network(w)
    r = w.owner.post(f"/infra/connections/{context['connection']}/clusters",
                     json={"name": f"k-{new_id()}", "networkId": context["network"], "config": _CLUSTER_CONFIG})
    assert r.status_code == 201, r.text
    return {**context, "cluster": r.json()["id"]}


shared_cluster = once(_cluster)


def _active_cluster(w: World) -> Context:
    context = _cluster(w)
    op = w.owner.post(f"/infra/connections/{context['connection']}/clusters/{context['cluster']}/provision").json()
    wait_until(lambda: w.owner.get(f"/operations/{op['id']}").json()["status"] == "succeeded", timeout=30)
    return context


shared_active_cluster = once(_active_cluster)


def _share(w: World, context: Context) -> Context:
    r = w.owner.post(f"/infra/clusters/{context['cluster']}/teams", json={"teamIds": [w.team1]})
    assert r.status_code == 200, r.text
    return {**context, "team1": w.team1}


def _shared_cluster(w: World) -> Context:
    """A pending cluster shared with team 1 (the target of removeProvisionedClusterTeam)."""
    return _share(w, _cluster(w))


def _active_for_team1(w: World) -> Context:
    """The shared active cluster, shared with team 1: team 1's members see it in /me/clusters."""
    return _share(w, shared_active_cluster(w))


shared_cluster_of_team1 = once(_shared_cluster)
shared_active_for_team1 = once(_active_for_team1)


def _admins(ok: int, *, own_org: bool = False) -> dict[str, int]:
    return by_caller(ok, ADMINS + (("outsider",) if own_org else ()), seen=IN_ORG)


def _on(suffix: str = "") -> Any:
    return lambda w, c: f"/infra/connections/{c['connection']}{suffix}"


def _net(suffix: str = "") -> Any:
    return lambda w, c: f"/infra/connections/{c['connection']}/networks/{c['network']}{suffix}"


def _clu(suffix: str = "") -> Any:
    return lambda w, c: f"/infra/connections/{c['connection']}/clusters/{c['cluster']}{suffix}"


def cases() -> list[Case]:
    return [
        Case("listConnections", "GET", lambda w, c: "/infra/connections", _admins(200, own_org=True), setup=shared),
        Case("createConnection", "POST", lambda w, c: "/infra/connections", _admins(201, own_org=True),
             body=lambda c: {"name": f"c-{new_id()}", "providerConfig": {"accountId": ACCOUNT, "region": REGION}}),
        Case("describeConnection", "GET", _on(), _admins(200), setup=shared),
        Case("updateConnection", "PATCH", _on(), _admins(200), setup=shared,
             body=lambda c: {"providerConfig": {"region": REGION}}),
        Case("deleteConnection", "DELETE", _on(), _admins(200), setup=once(_fresh), fresh=_fresh),
        Case("getConnectionTemplate", "GET", _on("/template"), _admins(200), setup=shared),
        Case("downloadConnectionTemplate", "GET", _on("/template/download"), _admins(200), setup=shared),
        Case("verifyConnection", "POST", _on("/verify"), _admins(200), setup=shared),
        Case("listRegions", "GET", _on("/regions"), _admins(200), setup=shared),
        Case("listInstanceTypes", "GET", lambda w, c: f"/infra/connections/{c['connection']}/instance-types?limit=1",
             _admins(200), setup=shared),
        Case("listProviderNetworks", "GET", _on("/provider-networks"), _admins(200), setup=shared),
        Case("syncConnectionTemplate", "POST", _on("/sync-template"), _admins(202), setup=shared),
        Case("listNetworks", "GET", lambda w, c: "/infra/networks", _admins(200, own_org=True),
             setup=shared_network),
        Case("listConnectionNetworks", "GET", _on("/networks"), _admins(200), setup=shared_network),
        Case("createNetwork", "POST", _on("/networks"), _admins(201), setup=shared,
             body=lambda c: {"name": f"n-{new_id()}", "config": {"cidr": _cidr()}}),
        Case("describeNetwork", "GET", _net(), _admins(200), setup=shared_network),
        Case("updateNetwork", "PATCH", _net(), _admins(200), setup=shared_network,
             body=lambda c: {"name": f"renamed-{new_id()}"}),
        Case("provisionNetwork", "POST", _net("/provision"), _admins(202), setup=shared_network, fresh=_network),
        Case("destroyNetwork", "DELETE", _net(), _admins(202), setup=shared_network, fresh=_adopted),
        Case("deleteNetworkRecord", "DELETE", lambda w, c: f"/infra/networks/{c['network']}", _admins(200),
             setup=shared_network, fresh=_network),
        Case("listProvisionedClusters", "GET", lambda w, c: "/infra/clusters", _admins(200, own_org=True),
             setup=shared_cluster),
        Case("describeProvisionedCluster", "GET", lambda w, c: f"/infra/clusters/{c['cluster']}", _admins(200),
             setup=shared_cluster),
        Case("deleteProvisionedClusterRecord", "DELETE", lambda w, c: f"/infra/clusters/{c['cluster']}",
             _admins(200), setup=shared_cluster, fresh=_cluster),
        Case("listProvisionedClusterTeams", "GET", lambda w, c: f"/infra/clusters/{c['cluster']}/teams", _admins(200),
             setup=shared_cluster_of_team1, check=lists("team1", ADMINS)),
        Case("addProvisionedClusterTeams", "POST", lambda w, c: f"/infra/clusters/{c['cluster']}/teams",
             _admins(200), setup=shared_cluster_of_team1, body=lambda c: {"teamIds": [c["team1"]]}),
        Case("removeProvisionedClusterTeam", "DELETE",
             lambda w, c: f"/infra/clusters/{c['cluster']}/teams/{c['team1']}", _admins(200),
             setup=shared_cluster_of_team1, fresh=_shared_cluster),
        # /me/clusters (every caller's cases: tests/authz/test_matrix_workloads.py) with a provisioned cluster shared
        # with team 1: its members (any team role) and the organization admins see it; nobody else learns of it.
        Case("listMyClusters", "GET", lambda w, c: "/me/clusters", by_caller(200, CALLERS, outsider_in_org=404),
             setup=shared_active_for_team1, check=lists("cluster", TEAM1), label="provisioned, team 1"),
        Case("describeMyCluster", "GET", lambda w, c: f"/me/clusters/{c['cluster']}", by_caller(200, TEAM1),
             setup=shared_active_for_team1, label="provisioned, team 1"),
        Case("listConnectionClusters", "GET", _on("/clusters"), _admins(200), setup=shared_cluster),
        Case("createProvisionedCluster", "POST", _on("/clusters"), _admins(201), setup=shared_active_network,
             body=lambda c: {"name": f"k-{new_id()}", "networkId": c["network"], "config": _CLUSTER_CONFIG}),
        Case("describeConnectionCluster", "GET", _clu(), _admins(200), setup=shared_cluster),
        Case("updateProvisionedCluster", "POST", _clu(), _admins(200), setup=shared_cluster,
             body=lambda c: {"name": f"renamed-{new_id()}"}),
        Case("provisionCluster", "POST", _clu("/provision"), _admins(202), setup=shared_cluster, fresh=_cluster),
        Case("destroyProvisionedCluster", "DELETE", _clu(), _admins(202), setup=shared_cluster,
             fresh=_active_cluster),
        Case("getProvisionedClusterKubeconfig", "GET", _clu("/kubeconfig"), _admins(200),
             setup=shared_active_cluster),
        Case("getProvisionedClusterHealth", "GET", _clu("/health"), _admins(200), setup=shared_active_cluster),
        Case("getProvisionedClusterMetrics", "GET", lambda w, c: f"/infra/connections/{c['connection']}/clusters/"
             f"{c['cluster']}/metrics?period=24h", _admins(200), setup=shared_active_cluster),
        Case("getOperation", "GET", lambda w, c: f"/operations/{c['operation']}", _admins(200), setup=shared),
    ]


@pytest.fixture(scope="module")
def infra_world(infra_api: str, moto_url: str) -> Iterator[World]:
    _MOTO["url"] = moto_url
    yield build_world(infra_api)


@pytest.mark.parametrize("caller", CALLERS)
def test_infrastructure_matrix(infra_world: World, caller: str) -> None:
    run_cases(infra_world, caller, cases())
