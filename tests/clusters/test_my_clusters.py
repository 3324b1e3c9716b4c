"""/me/clusters: the built-in `local` cluster, shared with every team of every organization."""

from __future__ import annotations

from tests.support.actors import Actor, assert_error, signup
from tests.support.world import add_to_team, create_member, create_service_account, create_team

CLUSTER_FIELDS = {"id", "name", "createdAt", "createdBy", "updatedAt", "updatedBy", "externalClusterId", "region",
                  "connectionId", "networkId", "externalStatus", "operationId"}


def test_local_cluster_listed_with_the_seeded_envelope(api_url: str) -> None:
    owner = signup(api_url)
    body = owner.get("/me/clusters").json()
    assert set(body) == {"total", "items", "included"}
    assert body["total"] == 1
    assert body["items"] == [{"id": "LOCAL", "externalClusterId": None, "connectionId": None}]
    assert set(body["included"]) == {"clusters", "connections", "networks", "externalClusters"}
    [cluster] = body["included"]["clusters"]
    assert set(cluster) == CLUSTER_FIELDS
    assert cluster["id"] == "LOCAL" and cluster["name"] == "local" and cluster["externalStatus"] == "active"
    described = owner.get("/me/clusters/LOCAL").json()
    assert described == {"item": body["items"][0], "included": body["included"]}
    assert owner.get("/me/clusters", params={"sortBy": "name", "sortDirection": "desc"}).json()["total"] == 1
    page2 = owner.get("/me/clusters", params={"page": 2, "limit": 1}).json()
    assert page2["total"] == 1 and page2["items"] == []


def test_access_follows_team_membership(api_url: str) -> None:
    owner = signup(api_url)
    team = create_team(owner, "t")
    member, loner = create_member(owner), create_member(owner)
    add_to_team(owner, team, member, "TEAMVIEWER")
    assert [c["id"] for c in member.get("/me/clusters").json()["items"]] == ["LOCAL"]
    assert member.get("/me/clusters/LOCAL").status_code == 200
    assert loner.get("/me/clusters").json() == {
        "total": 0, "items": [], "included": {"clusters": [], "connections": [], "networks": [],
                                              "externalClusters": []}}
    assert_error(loner.get("/me/clusters/LOCAL"), 404)
    _, robot = create_service_account(owner, "cluster-bot", ["CanUseClusters"])
    assert robot.get("/me/clusters").json()["total"] == 1


def test_bad_requests(api_url: str) -> None:
    owner = signup(api_url)
    assert_error(owner.get("/me/clusters/NOSUCHCLUSTER"), 404)
    assert_error(owner.get("/me/clusters/bad-id"), 400)
    assert_error(owner.get("/me/clusters", params={"sortBy": "region"}), 400, "invalid_sort_field")
    assert_error(owner.get("/me/clusters", params={"page": 0}), 400)
    assert_error(owner.get("/me/clusters", params={"limit": 101}), 400)
    assert_error(Actor(api_url).get("/me/clusters"), 401)
