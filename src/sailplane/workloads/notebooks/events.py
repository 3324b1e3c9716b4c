"""A notebook's failed start, its failure once started, and its stop as notification events: what
`states.transition` hands to `notifications.outbox` in the transaction of the change (an explicit call, no
registered hook)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.notifications import event_types
from sailplane.notifications.outbox import Event
from sailplane.workloads.notebooks.models import NotebookTeam

START_FAILED = "notebook.start_failed"
FAILED = "notebook.failed"
STOPPED = "notebook.stopped"


def notebook_ended(db: Session, rows: Sequence[Any], event_type: str, now: datetime) -> list[Event]:
    """`rows`: (id, organization_id, member_id, name, status, status_message) of notebooks whose start just
    failed (`START_FAILED`), which just failed once started (`FAILED`) or which just stopped (`STOPPED`)."""
    teams: dict[str, list[str]] = {}
    for notebook_id, team_id in db.execute(select(NotebookTeam.notebook_id, NotebookTeam.team_id).where(
            NotebookTeam.notebook_id.in_(sorted({n.id for n in rows})))):
        teams.setdefault(notebook_id, []).append(team_id)
    at = now.isoformat().replace("+00:00", "Z")
    return [Event(organization_id=n.organization_id, event_type=event_type,
                  event_id=f"notebook:{n.id}:{event_type}:{at}",  # a notebook starts and stops many times
                  resource_type=event_types.NOTEBOOK, resource_id=n.id, team_ids=tuple(sorted(teams.get(n.id, ()))),
                  owner_member_id=n.member_id, scope_resource_id=n.id,
                  data={"notebook": {"id": n.id, "name": n.name, "status": n.status,
                                     "statusMessage": n.status_message, "at": at}})
            for n in rows]
