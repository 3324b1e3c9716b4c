"""Sharing a provisioned cluster with teams, against the moto server: a new cluster is shared with no team, so only
organization admins see it; sharing it with a team shows it to that team's members in /me/clusters and lets their
workloads name it (the 409 of the missing Kubernetes backend), unsharing takes it away again; members of other teams
and other organizations never learn it exists (404, and an unknown `clusterId` exactly like an ID nobody has).
Deleting a team or the cluster's record takes its sharing rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from sailplane.kit.ids import new_id
from tests.infra.helpers import wait_operation
from tests.infra.test_cluster_records import pending_cluster
from tests.support.actors import Actor, assert_error, signup, unknown_reference
from tests.support.world import add_to_team, create_member, create_team

UNKNOWN = "NOSUCHCLUSTER1"


def _active(infra_api: str, customer_aws: Any, cidr: str) -> tuple[Actor, str, str]:
    """A new owner's active cluster: (owner, connection's clusters path, cluster ID)."""
    owner, _conn, _network, base, cid = pending_cluster(infra_api, customer_aws, cidr, "shared")
    op = owner.post(f"{base}/{cid}/provision")
    assert op.status_code == 202, op.text
    assert wait_operation(owner, op.json()["id"])["status"] == "succeeded"
    return owner, base, cid


def _mine(actor: Actor) -> list[str]:
    r = actor.get("/me/clusters")
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def _config(team: str, cluster: str) -> dict[str, Any]:
    return {"name": f"eks-{new_id()}", "teamId": team, "clusterId": cluster}


def _job(team: str, cluster: str) -> dict[str, Any]:
    return {"jobKey": f"eks-{new_id()}".lower(), "clusterId": cluster, "teamIds": [team],
            "config": {"sql": {"source": "SELECT 1"}}}


def _as_unknown(actor: Actor, team: str, cid: str) -> None:
    """Naming the cluster in a workload config, an inline session config and a job is answered exactly as an
    unknown cluster."""
    for path, body, field in (("/workloads/compute-configs", _config, "clusterId"),
                              ("/workloads/jobs", _job, "clusterId")):
        unknown = unknown_reference(actor.post(path, json=body(team, UNKNOWN)), field, UNKNOWN)
        assert unknown_reference(actor.post(path, json=body(team, cid)), field, cid) == unknown, path


def _unavailable(actor: Actor, team: str, cid: str) -> None:
    for path, body in (("/workloads/compute-configs", _config), ("/workloads/jobs", _job)):
        assert_error(actor.post(path, json=body(team, cid)), 409, "compute_backend_unavailable")


def test_sharing_a_cluster_with_a_team(infra_api: str, customer_aws: Any) -> None:
    owner, _base, cid = _active(infra_api, customer_aws, "10.90.0.0/16")
    teams = f"/infra/clusters/{cid}/teams"
    analysts, others = create_team(owner, "analysts"), create_team(owner, "others")
    alice, bob = create_member(owner), create_member(owner)
    add_to_team(owner, analysts, alice)
    add_to_team(owner, others, bob)

    # New: shared with no team. The organization's admins see and use it; team members do not.
    assert owner.get(teams).json() == {"total": 0, "items": []}
    assert cid in _mine(owner)
    assert owner.get(f"/me/clusters/{cid}").status_code == 200
    assert _mine(alice) == ["LOCAL"]
    not_there = assert_error(alice.get(f"/me/clusters/{UNKNOWN}"), 404)
    hidden = assert_error(alice.get(f"/me/clusters/{cid}"), 404)
    assert (hidden["code"], hidden["message"]) == (not_there["code"], not_there["message"])
    _as_unknown(alice, analysts, cid)
    # An admin sees it, so is told why the team's workload cannot use it.
    err = assert_error(owner.post("/workloads/compute-configs", json=_config(analysts, cid)), 422)
    assert err["details"]["fieldErrors"] == {"clusterId": f"the cluster {cid} is not shared with the workload's team"}

    # Shared with the analysts: Alice sees it and may name it (the Kubernetes backend does not exist yet: 409).
    r = owner.post(teams, json={"teamIds": [analysts]})
    assert r.status_code == 200, r.text
    [link] = r.json()["items"]
    assert link["clusterId"] == cid and link["teamId"] == analysts and link["createdBy"] == owner.member_id
    again = owner.post(teams, json={"teamIds": [analysts, analysts]})  # idempotent
    assert again.status_code == 200 and again.json()["items"] == [link], again.text
    listed = owner.get(teams).json()
    # (Its members: the owner, who created it, and Alice.)
    assert listed["total"] == 1 and [(i["team"]["id"], i["memberCount"]) for i in listed["items"]] == [(analysts, 2)]
    assert _mine(alice) == ["LOCAL", cid]  # by name: "local", "shared"
    described = alice.get(f"/me/clusters/{cid}")
    assert described.status_code == 200, described.text
    assert [c["id"] for c in described.json()["included"]["externalClusters"]] == [cid]
    _unavailable(alice, analysts, cid)
    _unavailable(owner, analysts, cid)
    # Bob's team has no share: he sees nothing, and his team's workloads cannot name it.
    assert _mine(bob) == ["LOCAL"]
    assert_error(bob.get(f"/me/clusters/{cid}"), 404)
    _as_unknown(bob, others, cid)
    # The analysts' share does not reach a job of the other team, even an admin's.
    err = assert_error(owner.post("/workloads/jobs", json=_job(others, cid)), 422)
    assert err["details"]["fieldErrors"] == {"clusterId": f"the cluster {cid} is not shared with the workload's team"}

    # Members may not change the sharing (the matrix: tests/infra/test_matrix_infra.py).
    assert_error(alice.get(teams), 403)
    assert_error(alice.post(teams, json={"teamIds": [analysts]}), 403)
    assert_error(alice.delete(f"{teams}/{analysts}"), 403)

    # Unshared: gone for Alice again.
    assert owner.delete(f"{teams}/{analysts}").json() == {"message": "The requested operation was done successfully."}
    assert_error(owner.delete(f"{teams}/{analysts}"), 404)
    assert owner.get(teams).json() == {"total": 0, "items": []}
    assert _mine(alice) == ["LOCAL"]
    assert_error(alice.get(f"/me/clusters/{cid}"), 404)
    _as_unknown(alice, analysts, cid)


def test_other_organizations_and_bad_teams(infra_api: str, customer_aws: Any) -> None:
    owner, _base, cid = _active(infra_api, customer_aws, "10.91.0.0/16")
    teams = f"/infra/clusters/{cid}/teams"
    team = create_team(owner, "analysts")
    outsider = signup(infra_api)
    their_team = create_team(outsider, "theirs")

    # Their organization's admin: our cluster does not exist for them, in any operation.
    assert_error(outsider.get(teams), 404)
    assert_error(outsider.post(teams, json={"teamIds": [their_team]}), 404)
    assert_error(outsider.delete(f"{teams}/{team}"), 404)
    assert cid not in _mine(outsider)
    assert_error(outsider.get(f"/me/clusters/{cid}"), 404)
    assert_error(outsider.post("/workloads/compute-configs", json=_config(their_team, cid)), 422)
    # Our admin cannot share with their team, nor with a team nobody has (422 naming teamIds, as for catalogs).
    for bad in (their_team, "NOSUCHTEAM1"):
        err = assert_error(owner.post(teams, json={"teamIds": [team, bad]}), 422)
        assert err["details"]["fieldErrors"] == {"teamIds": f"unknown team {bad}"}
    assert owner.get(teams).json()["total"] == 0  # nothing of a refused request was kept
    assert_error(owner.post(teams, json={"teamIds": []}), 422)
    assert_error(owner.post(teams, json={}), 422)
    assert_error(owner.delete(f"{teams}/{their_team}"), 404)
    assert_error(owner.get("/infra/clusters/NOSUCHCLUSTER1/teams"), 404)


def test_deleting_a_team_or_the_record_removes_the_sharing(infra_api: str, infra_database: str,
                                                           customer_aws: Any) -> None:
    owner, _conn, _network, base, cid = pending_cluster(infra_api, customer_aws, "10.92.0.0/16", "doomed")
    teams = f"/infra/clusters/{cid}/teams"
    kept, doomed = create_team(owner, "kept"), create_team(owner, "doomed")
    # A pending cluster can be shared ahead of its provisioning.
    assert owner.post(teams, json={"teamIds": [kept, doomed]}).status_code == 200
    assert owner.get(teams).json()["total"] == 2

    assert owner.delete(f"/org/teams/{doomed}").status_code == 200
    assert [i["team"]["id"] for i in owner.get(teams).json()["items"]] == [kept]
    assert _links(infra_database, cid) == [kept]

    assert owner.delete(f"/infra/clusters/{cid}").status_code == 200  # never provisioned: the record may go
    assert_error(owner.get(teams), 404)
    assert _links(infra_database, cid) == []
    assert owner.delete(f"/org/teams/{kept}").status_code == 200


def _links(database_url: str, cluster_id: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text(
                "SELECT team_id FROM provisioned_cluster_teams WHERE cluster_id = :c ORDER BY team_id"),
                {"c": cluster_id})]
    finally:
        engine.dispose()
