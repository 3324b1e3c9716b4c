"""Shortcuts for notebook tests: the two-team organization, workload configs, notebooks, and reading rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.data.helpers import Org, build_org
from tests.support.actors import Actor, unique_email

__all__ = ["Org", "build_org", "make_config", "make_notebook", "notebook_of", "db_rows"]

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
