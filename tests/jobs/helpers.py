"""Shared setup for job tests: the catalog/query organization (two teams and their members) and
request bodies for SQL and Python jobs."""

from __future__ import annotations

from typing import Any

from tests.data.helpers import Org, build_org
from tests.support.actors import Actor, unique_email

__all__ = ["Org", "build_org", "sql_job", "python_job", "make_job", "unique_key"]


def unique_key(prefix: str = "job") -> str:
    return f"{prefix}-{unique_email('k').split('@')[0].lower()}"


def sql_job(key: str, team_ids: list[str], **fields: Any) -> dict[str, Any]:
    return {"jobKey": key, "clusterId": "LOCAL", "config": {"sql": {"source": "SELECT 1"}}, "teamIds": team_ids,
            **fields}


def python_job(key: str, team_ids: list[str], **fields: Any) -> dict[str, Any]:
    return {"jobKey": key, "clusterId": "LOCAL", "teamIds": team_ids,
            "config": {"python": {"source": "main.py", "parameters": [["--name=job", "one", "two"]],
                                  "namedParameters": {"date": "2026-04-06"}}},
            **fields}


def make_job(actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
    r = actor.post("/workloads/jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
