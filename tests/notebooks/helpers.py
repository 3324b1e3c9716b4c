"""Shortcuts for notebook tests: the two-team organization, workload configs, notebooks, and reading rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.data.helpers import Org, build_org
from tests.support.actors import Actor, unique_email
from tests.support.waiting import wait_until

__all__ = ["Org", "build_org", "make_config", "make_notebook", "notebook_of", "db_rows", "describe_notebook",
           "wait_for_status", "start_running", "stop_stopped"]

SEED_NOTEBOOK_FIELDS = {"id", "memberId", "workloadConfigId", "name", "description", "status", "statusMessage",
                        "idleTimeoutSeconds", "detachedTimeoutSeconds", "lastActiveAt", "sessionId", "createdAt",
                        "createdBy", "updatedAt", "updatedBy"}
SEED_TEAM_FIELDS = {"id", "organizationId", "name", "createdAt", "createdBy", "updatedAt", "updatedBy",
                    "defaultRoleId"}


def make_config(actor: Actor, team: str, **config: Any) -> str:
    body: dict[str, Any] = {"name": unique_email("cfg").split("@")[0], "teamId": team}
    if config:
        body["config"] = config
    r = actor.post("/workloads/compute-configs", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def make_notebook(actor: Actor, config_id: str, name: str = "Daily Sales Analysis", **body: Any) -> dict[str, Any]:
    r = actor.post("/workloads/notebooks", json={"workloadConfigId": config_id, "name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def notebook_of(envelope: dict[str, Any]) -> dict[str, Any]:
    """The included notebook record of a describe/create envelope."""
    [found] = [n for n in envelope["included"]["notebooks"] if n["id"] == envelope["item"]["notebookId"]]
    return found  # type: ignore[no-any-return]


def db_rows(database_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return [dict(r) for r in result.mappings().all()] if result.returns_rows else []
    finally:
        engine.dispose()


def describe_notebook(actor: Actor, notebook_id: str) -> dict[str, Any]:
    r = actor.get(f"/workloads/notebooks/{notebook_id}")
    assert r.status_code == 200, r.text
    return notebook_of(r.json())


def wait_for_status(actor: Actor, notebook_id: str, *statuses: str, timeout: float = 90.0) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (n := describe_notebook(actor, notebook_id))["status"] in statuses and n, timeout=timeout,
        interval=0.1)
    return found


def start_running(actor: Actor, notebook_id: str) -> dict[str, Any]:
    """startNotebook, then wait for `running` (its Sail session and marimo server up); fails with the
    notebook's statusMessage when it failed instead."""
    r = actor.post(f"/workloads/notebooks/{notebook_id}/start")
    assert r.status_code == 200, r.text
    running = wait_for_status(actor, notebook_id, "running", "failed")
    assert running["status"] == "running", running["statusMessage"]
    return running


def stop_stopped(actor: Actor, notebook_id: str) -> dict[str, Any]:
    """stopNotebook, then wait until it is `stopped`."""
    r = actor.post(f"/workloads/notebooks/{notebook_id}/stop")
    assert r.status_code == 200, r.text
    stopped = wait_for_status(actor, notebook_id, "stopped", "failed")
    assert stopped["status"] == "stopped", stopped["statusMessage"]
    return stopped
