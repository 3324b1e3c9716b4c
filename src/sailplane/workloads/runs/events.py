"""A job run's end as notification events: what `states.transition` hands to `notifications.outbox` in the
transaction of the change (an explicit call, no registered hook)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.notifications import event_types
from sailplane.notifications.outbox import Event
from sailplane.workloads.jobs.models import Job, JobTeam


def run_ended(db: Session, runs: Sequence[Any], status: str, now: datetime) -> list[Event]:
    """`runs`: rows of (id, organization_id, job_id, attempt, status_message) that just reached `status`."""
    job_ids = sorted({r.job_id for r in runs})
    jobs = {j.id: j for j in db.execute(select(Job.id, Job.job_key, Job.member_id).where(Job.id.in_(job_ids)))}
    teams: dict[str, list[str]] = {}
    for job_id, team_id in db.execute(select(JobTeam.job_id, JobTeam.team_id).where(JobTeam.job_id.in_(job_ids))):
        teams.setdefault(job_id, []).append(team_id)
    events = []
    for run in runs:
        job = jobs.get(run.job_id)
        events.append(Event(
            organization_id=run.organization_id, event_type=f"{event_types.JOB_RUN}.{status}",
            event_id=f"job_run:{run.id}:{run.attempt}:{status}", resource_type=event_types.JOB_RUN,
            resource_id=run.id, team_ids=tuple(sorted(teams.get(run.job_id, ()))),
            owner_member_id=job.member_id if job is not None else None, scope_resource_id=run.job_id,
            data={"jobRun": {"id": run.id, "jobId": run.job_id, "jobKey": job.job_key if job is not None else None,
                             "status": status, "statusMessage": run.status_message, "attempt": run.attempt,
                             "finishedAt": now.isoformat().replace("+00:00", "Z")}}))
    return events
