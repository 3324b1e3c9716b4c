"""Workload configs (compute profiles): create, list, describe, visibility and validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sessions.helpers import org_with_team
from tests.support.actors import Actor, assert_error
from tests.support.world import add_to_team, create_member, create_team

FULL = {
    "sail": {
        "executionMode": "cluster",
        "compute": {
            "driver": {"instanceType": "c8g.2xlarge",
                       "ebsConfig": {"volumeType": "gp3", "volumeSize": 100, "iops": 3000, "throughput": 125,
                                     "deleteOnTermination": True}},
            "worker": {"instanceType": "c8g.4xlarge",
                       "ebsConfig": {"volumeType": "gp3", "volumeSize": 100, "iops": 3000, "throughput": 125,
                                     "deleteOnTermination": True},
                       "maxNodes": 4, "capacityType": "on-demand"},
        },
        "lakesailImageUri": "public.ecr.aws/lakesail/sail:0.7.2",
        "libraries": [{"pypi": {"package": "pandas>=2.2", "repo": "https://pypi.org/simple"}},
                      {"requirements": {"uri": "https://example.com/requirements.txt"}},
                      {"whl": "https://example.com/pkg-1.0-py3-none-any.whl"}],
        "extraEnv": {"AWS_REGION": "us-east-1", "SAIL_EXECUTION__BATCH_SIZE": "4096"},
    }
}


def _create(actor: Actor, team: str, name: str = "Production Cluster", **body: Any) -> dict[str, Any]:
    r = actor.post("/workloads/compute-configs", json={"name": name, "teamId": team, **body})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def test_create_describe_list(api_url: str) -> None:
    owner, team = org_with_team(api_url)
    created = _create(owner, team, workloadType="sail", clusterId="LOCAL", config=FULL,
                      endpointLimits={"spark_connect": 3})
    assert set(created) == {"id", "name", "workloadType", "clusterId", "teamId", "config", "endpointLimits",
                            "createdAt", "createdBy", "updatedAt", "updatedBy"}
    assert created["config"] == FULL and created["endpointLimits"] == {"spark_connect": 3}
    assert created["workloadType"] == "sail" and created["clusterId"] == "LOCAL" and created["teamId"] == team
    assert created["createdBy"] == owner.member_id
    minimal = _create(owner, team, name="defaults")
    assert minimal["config"] == {"sail": {"executionMode": "standalone", "libraries": [], "extraEnv": {}}}
    assert minimal["clusterId"] == "LOCAL" and minimal["endpointLimits"] == {}
    assert owner.get(f"/workloads/compute-configs/{created['id']}").json() == created
    listed = owner.get("/workloads/compute-configs").json()
    assert [c["id"] for c in listed["items"]] == [created["id"], minimal["id"]] and listed["marker"] is None
    page = owner.get("/workloads/compute-configs", params={"limit": 1}).json()
    assert [c["id"] for c in page["items"]] == [created["id"]] and page["marker"] == created["id"]
    rest = owner.get("/workloads/compute-configs", params={"limit": 1, "marker": page["marker"]}).json()
    assert [c["id"] for c in rest["items"]] == [minimal["id"]]
    assert_error(owner.post("/workloads/compute-configs", json={"name": "defaults", "teamId": team}), 409)
    other_team = create_team(owner, "other")
    _create(owner, other_team, name="defaults")  # names are per team
    events = owner.get("/org/audit-events", params={"resourceId": created["id"]}).json()["items"]
    assert [e["action"] for e in events] == ["workload_config.create"]


def test_visibility(api_url: str) -> None:
    owner, team = org_with_team(api_url)
    other_team = create_team(owner, "other")
    team_admin, dev, viewer, loner = (create_member(owner) for _ in range(4))
    add_to_team(owner, team, team_admin, "TEAMADMIN")
    add_to_team(owner, team, dev)
    add_to_team(owner, team, viewer, "TEAMVIEWER")
    mine = _create(dev, team, name="dev-made")
    theirs = _create(owner, other_team, name="other-team")
    outsider, _ = org_with_team(api_url)

    def listed(actor: Actor, **params: str) -> list[str]:
        r = actor.get("/workloads/compute-configs", params=params)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]]

    assert listed(owner) == [mine["id"], theirs["id"]]
    assert listed(owner, teamId=other_team) == [theirs["id"]]
    for member in (team_admin, dev, viewer):
        assert listed(member) == [mine["id"]]
        assert member.get(f"/workloads/compute-configs/{mine['id']}").status_code == 200
        assert_error(member.get(f"/workloads/compute-configs/{theirs['id']}"), 404)
    assert listed(dev, teamId=other_team) == []
    assert listed(loner) == [] and listed(outsider) == []
    assert_error(outsider.get(f"/workloads/compute-configs/{mine['id']}"), 404)
    assert_error(owner.get("/workloads/compute-configs/NOSUCHCONFIG"), 404)
    # Creating: developers and team admins of the team; viewers may not; other teams are invisible.
    _create(team_admin, team, name="admin-made")
    assert_error(viewer.post("/workloads/compute-configs", json={"name": "v", "teamId": team}), 403)
    assert_error(dev.post("/workloads/compute-configs", json={"name": "x", "teamId": other_team}), 404)
    assert_error(outsider.post("/workloads/compute-configs", json={"name": "x", "teamId": team}), 404)
    assert_error(Actor(api_url).get("/workloads/compute-configs"), 401)


def test_inline_configs_are_not_listed(api_url: str, compute_api: str) -> None:
    owner, team = org_with_team(compute_api)
    r = owner.post("/workloads/sessions", json={"teamId": team, "workloadConfig": {"config": {"sail": {}}}})
    assert r.status_code == 201, r.text
    session = r.json()
    assert owner.get("/workloads/compute-configs").json()["items"] == []
    config_id = owner.get("/workloads/sessions").json()["included"]["workloadConfigs"][0]["id"]
    described = owner.get(f"/workloads/compute-configs/{config_id}").json()
    assert described["name"] is None and described["teamId"] == team
    assert owner.delete(f"/workloads/sessions/{session['id']}").status_code == 200


@pytest.fixture(scope="module")
def bad_input_org(api_url: str) -> tuple[Actor, str]:
    """One organization for the many bad-input cases (none of them may write anything)."""
    return org_with_team(api_url)


def _with(path: str, value: Any) -> dict[str, Any]:
    """FULL with one field replaced: path like 'sail.compute.worker.maxNodes'."""
    import copy

    config = copy.deepcopy(FULL)
    node: Any = config
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return config


@pytest.mark.parametrize(("path", "value"), [
    ("sail.executionMode", "turbo"),
    ("sail.compute.driver.instanceType", "C8G 2XL"),
    ("sail.compute.driver.ebsConfig.volumeType", "ssd"),
    ("sail.compute.driver.ebsConfig.volumeSize", 0),
    ("sail.compute.driver.ebsConfig.volumeSize", 20000),
    ("sail.compute.driver.ebsConfig.iops", 100),
    ("sail.compute.driver.ebsConfig.throughput", 5000),
    ("sail.compute.driver.ebsConfig.deleteOnTermination", "maybe"),
    ("sail.compute.worker.maxNodes", 0),
    ("sail.compute.worker.maxNodes", 9),  # more than the local cluster runs
    ("sail.compute.worker.capacityType", "reserved"),
    ("sail.compute.worker.instanceType", ""),
    ("sail.lakesailImageUri", "not an image"),
    ("sail.libraries.0.pypi.package", "pandas; rm -rf /"),
    ("sail.libraries.0.pypi.repo", "ftp://mirror"),
    ("sail.libraries.1", {"requirements": {}}),
    ("sail.libraries.2.whl", "https://example.com/pkg.tar.gz"),
    ("sail.libraries.0", {"pypi": {"package": "x"}, "whl": "https://e.com/x.whl"}),
    ("sail.libraries.0", {}),
    ("sail.libraries.2.whl", "s3://bucket/pkg-1.0-py3-none-any.whl"),  # the local cluster fetches over http(s)
    ("sail.lakesailImageUri", "public.ecr.aws/lakesail/sail:0.0.1"),  # not the installed Sail
    ("sail.extraEnv", {"SAILPLANE_SECRET_KEY": "x"}),
    ("sail.extraEnv", {"LD_PRELOAD": "/tmp/x.so"}),
    ("sail.extraEnv", {"1BAD": "x"}),
    ("sail.extraEnv", {"OK": 5}),
    ("sail.unknownField", 1),
])
def test_config_validation_names_the_field(bad_input_org: tuple[Actor, str], path: str, value: Any) -> None:
    owner, team = bad_input_org
    r = owner.post("/workloads/compute-configs", json={"name": "bad", "teamId": team, "config": _with(path, value)})
    err = assert_error(r, 422)
    fields = list(err["details"]["fieldErrors"])
    assert any(f.startswith(f"config.{path}") for f in fields), (path, fields)
    assert owner.get("/workloads/compute-configs").json()["items"] == []


def test_other_bad_config_requests(api_url: str) -> None:
    owner, team = org_with_team(api_url)

    def bad(body: dict[str, Any], status: int, field: str | None = None) -> None:
        err = assert_error(owner.post("/workloads/compute-configs", json=body), status)
        if field:
            assert field in err["details"]["fieldErrors"], err

    bad({"teamId": team}, 422, "name")
    bad({"name": "x"}, 422, "teamId")
    bad({"name": " ", "teamId": team}, 422, "name")
    bad({"name": "x", "teamId": team, "workloadType": "spark"}, 422, "workloadType")
    bad({"name": "x", "teamId": team, "endpointLimits": {"spark_connect": -1}}, 422, "endpointLimits.spark_connect")
    bad({"name": "x", "teamId": team, "endpointLimits": {"http": 1}}, 422, "endpointLimits.http")
    bad({"name": "x", "teamId": team, "clusterId": "NOSUCHCLUSTER"}, 422, "clusterId")
    bad({"name": "x", "teamId": "NOSUCHTEAM"}, 404)
    bad({"name": "x", "teamId": team, "clusterId": "bad id"}, 422, "clusterId")
    assert_error(owner.post("/workloads/compute-configs", content=b"{", headers={"Content-Type": "application/json"}),
                 400)
    assert_error(owner.get("/workloads/compute-configs", params={"teamId": "x y"}), 400)
