"""updateProvisionedCluster on an active cluster, against the moto server: an update operation changes the cluster's
stack in place (the EKS cluster's version and public access, its node group's sizes), the cluster `updating` and
still one workloads may name meanwhile, then active with the new config; changes EKS cannot make are 422 naming the
field; 409 while another operation runs; a failed update leaves the cluster active with the config it runs.

What moto does not model, and these tests therefore cannot show: EKS's in-place changes are the tests' moto plugin's
(tests/infra/moto_server.py: the version and endpoint access on the cluster, sizes, types and disk on the node group,
changed where they are, at once); moto's CloudFormation never rolls an update back (a resource that fails its update
fails the UpdateStack call itself, answered with EKS's JSON error in place of CloudFormation's XML, which botocore
cannot read), so the failed update here is an UpdateStack that failed: the node group was deleted behind the stack's
back.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tests.infra.conftest import infra_settings
from tests.infra.helpers import verified, wait_operation
from tests.infra.test_cluster_records import _config, adopted_network
from tests.support.actors import Actor, assert_error, signup
from tests.support.databases import fresh_database
from tests.support.server import LiveServer


def active_cluster(infra_api: str, customer_aws: Any, cidr: str, version: str) -> tuple[Actor, str, str]:
    """A new owner's provisioned (active) cluster at Kubernetes `version`: (owner, its connection's clusters path,
    cluster ID)."""
    owner = signup(infra_api)
    conn_id = verified(owner, customer_aws)["id"]
    network = adopted_network(owner, customer_aws, conn_id, cidr)
    base = f"/infra/connections/{conn_id}/clusters"
    r = owner.post(base, json={"networkId": network["id"], "name": "updated",
                               "config": {**_config(), "kubernetesVersion": version}})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    op = owner.post(f"{base}/{cid}/provision")
    assert op.status_code == 202, op.text
    assert wait_operation(owner, op.json()["id"])["status"] == "succeeded"
    return owner, base, cid


def latest_operation(owner: Actor, cid: str) -> dict[str, Any]:
    [operation] = owner.get(f"/infra/clusters/{cid}").json()["included"]["operations"]
    return operation  # type: ignore[no-any-return]


def test_an_active_cluster_is_updated_in_place(infra_api: str, customer_aws: Any) -> None:
    owner, base, cid = active_cluster(infra_api, customer_aws, "10.91.0.0/16", "1.34")
    name = f"sailplane-{cid.lower()}"
    eks = customer_aws("eks")
    arn = eks.describe_cluster(name=name)["cluster"]["arn"]
    new = {**_config(maxSize=5, desiredSize=4), "kubernetesVersion": "1.35", "publicAccessCidrs": ["198.51.100.0/24"]}

    r = owner.post(f"{base}/{cid}", json={"config": new})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "updating" and r.json()["config"]["kubernetesVersion"] == "1.35"
    operation = latest_operation(owner, cid)
    assert operation["operation"] == "update_cluster" and operation["resourceId"] == cid
    # Updating, it is still a cluster workloads may name.
    assert any(c["id"] == cid for c in owner.get("/me/clusters").json()["included"]["clusters"])

    ended = wait_operation(owner, operation["id"])
    assert ended["status"] == "succeeded", ended
    assert [s["name"] for s in ended["progress"]["resources"]] == ["plan", "update_stack", "wait_stack", "record"]
    assert [s["status"] for s in ended["progress"]["resources"]] == ["succeeded"] * 4
    item = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]
    assert item["status"] == "active" and item["config"] == {**new, "systemNodeGroup": {
        **new["systemNodeGroup"], "instanceTypes": [["m7g.large", "m7g.xlarge"]]}}
    # What the customer's admin sees: the same cluster (not a new one), at the new version, with the new sizes.
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert cluster["arn"] == arn and cluster["version"] == "1.35"
    assert cluster["resourcesVpcConfig"]["publicAccessCidrs"] == ["198.51.100.0/24"]
    group = eks.describe_nodegroup(clusterName=name, nodegroupName="system")["nodegroup"]
    assert group["scalingConfig"] == {"minSize": 1, "maxSize": 5, "desiredSize": 4}
    stack = customer_aws("cloudformation").describe_stacks(StackName=f"sailplane-cluster-{cid.lower()}")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    # The same config again changes nothing: no operation.
    again = owner.post(f"{base}/{cid}", json={"config": new, "name": "renamed"})
    assert again.status_code == 200 and again.json()["status"] == "active" and again.json()["name"] == "renamed"
    assert latest_operation(owner, cid)["id"] == operation["id"]


def test_changes_eks_cannot_make_in_place_name_the_field(infra_api: str, customer_aws: Any) -> None:
    owner, base, cid = active_cluster(infra_api, customer_aws, "10.92.0.0/16", "1.33")
    cases = [({"kubernetesVersion": "1.32"}, "config.kubernetesVersion", "cannot downgrade"),
             ({"kubernetesVersion": "1.35"}, "config.kubernetesVersion", "one minor version at a time"),
             ({"systemNodeGroup": {**_config()["systemNodeGroup"], "name": "other"}},
              "config.systemNodeGroup.name", "keeps its name"),
             ({"systemNodeGroup": {**_config()["systemNodeGroup"], "minSize": 4}},
              "config.systemNodeGroup.minSize", "more than maxSize"),
             ({"systemNodeGroup": {**_config()["systemNodeGroup"], "instanceTypes": [["x9.nothing"]]}},
              "config.systemNodeGroup.instanceTypes", "x9.nothing")]
    for change, field, words in cases:
        body = {"config": {**_config(), "kubernetesVersion": "1.33", **change}}
        err = assert_error(owner.post(f"{base}/{cid}", json=body), 422, "validation_failed")
        assert words in err["details"]["fieldErrors"][field], (change, err)
    item = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]
    assert item["status"] == "active" and item["config"]["kubernetesVersion"] == "1.33"

    # Another organization's admin gets 404, and the cluster is unchanged by them.
    other = signup(owner.base_url)
    assert_error(other.post(f"{base}/{cid}", json={"config": {**_config(), "kubernetesVersion": "1.35"}}), 404,
                 "not_found")


def test_a_failed_update_leaves_the_cluster_running_as_it_was(infra_api: str, customer_aws: Any) -> None:
    owner, base, cid = active_cluster(infra_api, customer_aws, "10.93.0.0/16", "1.34")
    name = f"sailplane-{cid.lower()}"
    eks = customer_aws("eks")
    eks.delete_nodegroup(clusterName=name, nodegroupName="system")  # someone deleted it in the console
    before = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]["config"]

    r = owner.post(f"{base}/{cid}", json={"config": {**_config(desiredSize=3), "kubernetesVersion": "1.34"}})
    assert r.status_code == 200 and r.json()["status"] == "updating", r.text
    ended = wait_operation(owner, latest_operation(owner, cid)["id"])
    assert ended["status"] == "failed", ended
    assert ended["error"]["code"] == "cloud_provider_error" and "UpdateStack" in ended["error"]["message"]
    item = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]
    assert item["status"] == "active", item
    assert item["config"] == before  # what it runs, not what was asked
    assert item["statusMessage"].startswith("The update failed: ") and "previous config" in item["statusMessage"]


def test_the_runner_starts_an_update_at_once(tmp_path: Path, database_url: str, moto_url: str,
                                             aws_credentials: None, customer_aws: Any) -> None:
    """The update's request wakes the operation runner once it commits: on a server whose runner looks for work
    every two minutes (and did at its start), the provisioning and the update still end in seconds."""
    live = LiveServer(infra_settings(tmp_path / "node", fresh_database(database_url, tmp_path), moto_url,
                                     operations_interval_seconds=120.0))
    live.start()
    try:
        owner, base, cid = active_cluster(f"{live.url}/api/v1", customer_aws, "10.94.0.0/16", "1.34")
        r = owner.post(f"{base}/{cid}", json={"config": {**_config(desiredSize=3), "kubernetesVersion": "1.35"}})
        assert r.status_code == 200 and r.json()["status"] == "updating", r.text
        ended = wait_operation(owner, latest_operation(owner, cid)["id"], timeout=20.0)
        assert ended["status"] == "succeeded", ended
    finally:
        live.stop()


def test_one_operation_at_a_time(tmp_path: Path, database_url: str, moto_url: str, aws_credentials: None,
                                 customer_aws: Any) -> None:
    """While an update waits to run, neither another update nor a destroy starts (409 `cluster_busy`, on either
    node). The update is asked of a node that runs no operations, beside one that looks for work every two minutes,
    so it stays pending for as long as the test needs (on the shared server, moto's instant stacks ended it between
    two requests now and then)."""
    database = fresh_database(database_url, tmp_path)
    runner = LiveServer(infra_settings(tmp_path / "node", database, moto_url, operations_interval_seconds=120.0))
    runner.start()
    api_only = LiveServer(infra_settings(tmp_path / "node", database, moto_url, operations_enabled=False))
    api_only.start()
    try:
        owner, base, cid = active_cluster(f"{runner.url}/api/v1", customer_aws, "10.95.0.0/16", "1.33")
        owner_b = dataclasses.replace(owner, base_url=f"{api_only.url}/api/v1")
        r = owner_b.post(f"{base}/{cid}", json={"config": {**_config(desiredSize=3), "kubernetesVersion": "1.34"}})
        assert r.status_code == 200 and r.json()["status"] == "updating", r.text
        assert latest_operation(owner, cid)["status"] == "pending"
        for actor in (owner, owner_b):
            assert_error(actor.post(f"{base}/{cid}", json={"config": {**_config(), "kubernetesVersion": "1.34"}}),
                         409, "cluster_busy")
            assert_error(actor.delete(f"{base}/{cid}"), 409, "cluster_busy")
        item = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]
        assert item["status"] == "updating" and latest_operation(owner, cid)["status"] == "pending", item
    finally:
        api_only.stop()
        runner.stop()
