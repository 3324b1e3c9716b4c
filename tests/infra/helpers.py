"""Shortcuts of the connection tests: create a connection through the API, deploy its template the way the
customer's admin would (their own boto3 against the moto server), follow an operation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sailplane.kit.ids import new_id
from tests.infra.conftest import ACCOUNT, REGION
from tests.support.actors import Actor
from tests.support.waiting import wait_until


def create_connection(owner: Actor, name: str | None = None, **config: Any) -> dict[str, Any]:
    body = {"name": name or f"aws-{new_id()}", "provider": "aws",
            "providerConfig": {"accountId": ACCOUNT, "region": REGION, **config}}
    r = owner.post("/infra/connections", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def download_template(owner: Actor, connection: dict[str, Any]) -> dict[str, Any]:
    """The template, fetched from the URL the connection's template info gives (with the admin's token)."""
    url = connection["template"]["templateUrl"]
    path = url.split("/api/v1", 1)[1]
    r = owner.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    return r.json()  # type: ignore[no-any-return]


def as_older_version(template: dict[str, Any], version: str = "0") -> dict[str, Any]:
    """The template as an older Sailplane would have served it: another version, one statement fewer."""
    old = json.loads(json.dumps(template))
    old["Outputs"]["TemplateVersion"]["Value"] = version
    old["Metadata"]["Sailplane"]["TemplateVersion"] = version
    policy = old["Resources"]["SailplaneRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "OwnRole"]
    return old


def deploy(customer_aws: Any, connection: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """CreateStack as the customer's admin, with the template's defaults (no parameters given)."""
    cfn = customer_aws("cloudformation")
    name = connection["template"]["stackName"]
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"])
    stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return stack


def stack_outputs(customer_aws: Any, stack_name: str) -> dict[str, str]:
    stack = customer_aws("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def verified(owner: Actor, customer_aws: Any,
             transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A connection whose template (through `transform`, when given) is deployed and verified."""
    connection = create_connection(owner)
    template = download_template(owner, connection)
    deploy(customer_aws, connection, transform(template) if transform else template)
    r = owner.post(f"/infra/connections/{connection['id']}/verify")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active", r.json()
    return connection


def wait_operation(actor: Actor, operation_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        r = actor.get(f"/operations/{operation_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_until(ended, timeout=timeout, interval=0.1)  # type: ignore[no-any-return]
