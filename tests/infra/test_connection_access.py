"""Who may touch connections and operations (CanManageInfrastructure: the Owner and Admin roles, or a policy),
what bad input gets (4xx in the one error shape, naming the field), and where the external ID may appear."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, text

from tests.infra.conftest import ACCOUNT, REGION, infra_settings
from tests.infra.helpers import create_connection, verified, wait_operation
from tests.support.actors import Actor, assert_error, signup
from tests.support.ports import free_port
from tests.support.server import LiveServer
from tests.support.world import create_member, create_service_account


def _paths(conn_id: str) -> list[tuple[str, str]]:
    base = f"/infra/connections/{conn_id}"
    return [("GET", base), ("PATCH", base), ("DELETE", base), ("GET", f"{base}/template"),
            ("GET", f"{base}/template/download"), ("POST", f"{base}/verify"), ("GET", f"{base}/regions"),
            ("GET", f"{base}/instance-types"), ("GET", f"{base}/provider-networks"),
            ("POST", f"{base}/sync-template")]


def _call(actor: Actor, method: str, path: str) -> Any:
    return actor.request(method, path, json={"name": "renamed"} if method == "PATCH" else None)


def test_only_infrastructure_managers_of_the_organization(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    connection = verified(owner, customer_aws)
    conn_id = connection["id"]
    op = owner.post(f"/infra/connections/{conn_id}/sync-template").json()
    wait_operation(owner, op["id"])

    admin = create_member(owner, "ADMIN")
    assert admin.get(f"/infra/connections/{conn_id}").status_code == 200
    assert admin.get(f"/operations/{op['id']}").status_code == 200
    _, robot = create_service_account(owner, "infra-bot", ["CanManageInfrastructure"])
    assert robot.get("/infra/connections").json()["total"] == 1

    # A member of the organization who does not manage infrastructure: 403 (the route's permission), everywhere.
    for who in (create_member(owner), create_member(owner, "AUDITOR"), create_service_account(owner, "x", None)[1]):
        assert_error(who.get("/infra/connections"), 403, "forbidden")
        assert_error(who.post("/infra/connections", json={}), 403, "forbidden")
        assert_error(who.get(f"/operations/{op['id']}"), 403, "forbidden")
        for method, path in _paths(conn_id):
            assert_error(_call(who, method, path), 403, "forbidden")

    # Another organization's admin: nothing of this organization exists for them.
    stranger = signup(infra_api)
    assert stranger.get("/infra/connections").json()["total"] == 0
    assert_error(stranger.get(f"/operations/{op['id']}"), 404, "not_found")
    for method, path in _paths(conn_id):
        assert_error(_call(stranger, method, path), 404, "not_found")
    assert_error(Actor(infra_api).get("/infra/connections"), 401)
    assert_error(Actor(infra_api).get(f"/operations/{op['id']}"), 401)
    # Nothing was changed by the refused calls.
    assert owner.get(f"/infra/connections/{conn_id}").json()["item"]["name"] == connection["name"]


def test_bad_input_names_the_field(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)

    def create(config: dict[str, Any], **extra: Any) -> Any:
        return owner.post("/infra/connections", json={"name": "c", "providerConfig": config, **extra})

    cases = [
        ({"accountId": "12345", "region": REGION}, "providerConfig.accountId"),
        ({"accountId": ACCOUNT, "region": "us-nowhere-1"}, "providerConfig.region"),
        ({"accountId": ACCOUNT, "region": "US EAST"}, "providerConfig.region"),
        ({"accountId": ACCOUNT, "region": REGION, "roleArn": "arn:aws:iam::999999999999:role/x"},
         "providerConfig.roleArn"),
        ({"accountId": ACCOUNT, "region": REGION, "roleArn": "not-an-arn"}, "providerConfig.roleArn"),
        ({"accountId": ACCOUNT, "region": REGION, "roleArn": None}, "providerConfig.roleArn"),
        ({"accountId": ACCOUNT, "region": REGION, "externalId": "mine"}, "providerConfig.externalId"),
        ({"region": REGION}, "providerConfig.accountId"),
    ]
    for config, field in cases:
        err = assert_error(create(config), 422)
        assert field in err["details"]["fieldErrors"], (config, err)
    assert "provider" in assert_error(create({"accountId": ACCOUNT, "region": REGION}, provider="gcp"),
                                      422)["details"]["fieldErrors"]
    assert "name" in assert_error(owner.post("/infra/connections", json={"providerConfig": {
        "accountId": ACCOUNT, "region": REGION}}), 422)["details"]["fieldErrors"]
    assert_error(owner.post("/infra/connections", content=b"{", headers={"content-type": "application/json"}), 400)

    connection = create_connection(owner, "taken")
    conn_id = connection["id"]
    assert_error(owner.post("/infra/connections", json={"name": "taken", "providerConfig": {
        "accountId": ACCOUNT, "region": REGION}}), 409, "connection_name_taken")
    for body, field in [({"providerConfig": {"stackArn": "arn:aws:cloudformation:us-east-1:999999999999:stack/s/1"}},
                         "providerConfig.stackArn"),
                        ({"providerConfig": {"region": "mars-north-1"}}, "providerConfig.region"),
                        ({"name": None}, "name"), ({"name": ""}, "name"), ({"accountId": ACCOUNT}, "accountId")]:
        err = assert_error(owner.patch(f"/infra/connections/{conn_id}", json=body), 422)
        assert field in err["details"]["fieldErrors"], (body, err)
    renamed = owner.patch(f"/infra/connections/{conn_id}", json={"name": "renamed", "providerConfig": {
        "region": "eu-west-1"}}).json()
    assert renamed["name"] == "renamed" and renamed["providerConfig"]["region"] == "eu-west-1"

    assert_error(owner.get("/infra/connections/bad-id"), 400)
    assert_error(owner.get("/infra/connections/NOSUCHCONNECTION"), 404, "not_found")
    assert_error(owner.get("/operations/NOSUCHOPERATION"), 404, "not_found")
    assert_error(owner.get("/operations/bad-id"), 400)
    assert_error(owner.get("/infra/connections", params={"limit": 101}), 400)
    # Syncing needs a verified connection.
    assert_error(owner.post(f"/infra/connections/{conn_id}/sync-template"), 409, "connection_not_verified")

    # The account's reads: the filters of the contract, checked before AWS is asked.
    active = verified(owner, customer_aws)["id"]
    types = f"/infra/connections/{active}/instance-types"
    for params, field in [({"region": "xx-nowhere-9"}, "region"), ({"region": "EU"}, "region"),
                          ({"architecture": "sparc"}, "architecture"), ({"minVcpus": -1}, "minVcpus"),
                          ({"minMemoryMib": "lots"}, "minMemoryMib"), ({"limit": 101}, "limit")]:
        err = assert_error(owner.get(types, params=params), 400)
        assert field in err["details"]["fieldErrors"], (params, err)
    err = assert_error(owner.get(f"/infra/connections/{active}/provider-networks",
                                 params={"region": "xx-nowhere-9"}), 400)
    assert "region" in err["details"]["fieldErrors"]
    assert owner.get(types, params={"limit": 0}).json()["items"] == []


def test_aws_unreachable_is_a_502_not_a_500(infra_api: str, infra_database: str,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server whose AWS endpoint does not answer (a closed loopback port): the account's reads answer 502 naming
    the failure, verification fails saying why, and nothing is a 500. (moto itself refuses no role: it assumes
    any, so an unreachable endpoint is how these tests make AWS fail.)"""
    owner = signup(infra_api)
    connection = create_connection(owner)
    settings = infra_settings(tmp_path_factory.mktemp("infra-down"), infra_database, f"http://127.0.0.1:{free_port()}",
                              operations_enabled=False)
    down = LiveServer(settings)
    down.start()
    try:
        there = Actor(f"{down.url}/api/v1", owner.token, owner.org_id)
        for path in ("regions", "instance-types", "provider-networks"):
            err = assert_error(there.get(f"/infra/connections/{connection['id']}/{path}"), 502, "cloud_provider_error")
            assert err["details"]["causedBy"] == "EndpointConnectionError" and err["details"]["retryable"] is True
        verify = there.post(f"/infra/connections/{connection['id']}/verify").json()
        assert verify["status"] == "failed" and "EndpointConnectionError" in verify["statusMessage"]
    finally:
        down.stop()


def test_the_external_id_is_shown_only_to_deploy_and_stored_encrypted(
        infra_api: str, infra_server: LiveServer, customer_aws: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    owner = signup(infra_api)
    connection = verified(owner, customer_aws)
    conn_id, secret = connection["id"], connection["template"]["parameters"]["ExternalId"]
    assert owner.get(f"/infra/connections/{conn_id}/template").json()["parameters"]["ExternalId"] == secret
    assert secret in owner.get(f"/infra/connections/{conn_id}/template/download").text

    op = owner.post(f"/infra/connections/{conn_id}/sync-template").json()
    wait_operation(owner, op["id"])
    answers = [owner.get("/infra/connections"), owner.get(f"/infra/connections/{conn_id}"),
               owner.patch(f"/infra/connections/{conn_id}", json={"name": "still-secret"}),
               owner.post(f"/infra/connections/{conn_id}/verify"), owner.get(f"/operations/{op['id']}"),
               owner.get(f"/infra/connections/{conn_id}/regions"), owner.get("/org/audit-events")]
    for answer in answers:
        assert secret not in answer.text, answer.request.url
    assert secret not in caplog.text

    engine = create_engine(infra_server.settings.database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT external_id FROM connections WHERE id = :id"), {"id": conn_id}).scalar()
            assert stored and secret not in stored and len(stored) > len(secret)
            for table in inspect(conn).get_table_names():
                for row in conn.execute(select(text("*")).select_from(text(f'"{table}"'))):
                    assert secret not in " ".join(str(v) for v in row), table
    finally:
        engine.dispose()


def test_delete_forgets_the_connection_not_the_stack(infra_api: str, customer_aws: Any) -> None:
    owner = signup(infra_api)
    connection = verified(owner, customer_aws)
    r = owner.delete(f"/infra/connections/{connection['id']}")
    assert r.status_code == 200 and r.json() == {"message": "The requested operation was done successfully."}
    assert_error(owner.get(f"/infra/connections/{connection['id']}"), 404)
    stack = customer_aws("cloudformation").describe_stacks(StackName=connection["template"]["stackName"])
    assert stack["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
