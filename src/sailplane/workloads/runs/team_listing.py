"""A page of the runs of the jobs shared with some teams, newest first, with bounded reads.

`organization_id = :org AND job_id IN (visible jobs) ORDER BY id DESC` walks the organization's
(organization_id, id) index and skips the runs of other jobs: a member who sees a few quiet jobs in
an organization of a million runs read the whole index for every page (and again for the total).
Here each visible job contributes at most `limit` entries of its own (job_id, id) index, and the
newest `limit` of those make the page:
- PostgreSQL: one statement, a LATERAL subquery per visible job (a round trip costs more than a
  small index scan);
- SQLite: one small query per job, merged in Python (in-process, no round trips; SQLite has no
  LATERAL).
The first page's total counts through the same index, capped like every other listing.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Integer, Select, String, bindparam, func, select, true

from sailplane.kit.dialect import Dialect, dialect_of
from sailplane.workloads.jobs.models import Job, JobTeam
from sailplane.workloads.runs.models import JobRun

_RUNS = JobRun.__table__.c
# The organization is checked on the jobs, not on the runs (a job's runs are in its organization): with
# `organization_id = :org` on the runs, PostgreSQL may walk (organization_id, id) for a quiet job.
_VISIBLE_JOBS = (
    select(JobTeam.job_id)
    .join(Job, Job.id == JobTeam.job_id)
    .where(Job.organization_id == bindparam("org_id", type_=String),
           JobTeam.team_id.in_(bindparam("team_ids", type_=String, expanding=True)))
    .distinct()
)


class TeamStatements(NamedTuple):
    job_ids: Select[Any]
    total: Select[Any]  # capped count of the visible jobs' runs
    newest: Select[Any]  # PostgreSQL: the page; SQLite: one job's newest :limit runs
    older: Select[Any]  # the same, below :marker


@functools.cache
def statements(columns: tuple[Any, ...], cap: int, dialect: Dialect) -> TeamStatements:
    """Built once per dialect (`columns` are the listing's, in its row order)."""
    limit = bindparam("limit", type_=Integer)
    if dialect.lateral:
        jobs = _VISIBLE_JOBS.subquery("visible")

        def per_job(*older: Any, most: Any = limit) -> Any:
            # IDs only, so (job_id, id) answers alone. Asked for whole rows, PostgreSQL preferred walking the
            # primary key backwards and filtering on job_id (its heap pages come in order): 47 ms instead
            # of 0.1 ms for a job with one run in a thousand.
            return (select(_RUNS.id).where(_RUNS.job_id == jobs.c.job_id, *older)
                    .order_by(_RUNS.id.desc()).limit(most).lateral("per_job"))

        def page(*older: Any) -> Select[Any]:
            ids = per_job(*older)
            newest = select(ids.c.id).select_from(jobs.join(ids, true())).order_by(ids.c.id.desc()).limit(limit)
            top = newest.subquery("top")
            return select(*columns).join_from(JobRun.__table__, top, _RUNS.id == top.c.id).order_by(_RUNS.id.desc())

        counted = per_job(most=cap + 1)
        total = select(func.count()).select_from(
            select(counted.c.id).select_from(jobs.join(counted, true())).limit(cap + 1).subquery())
    else:
        def page(*older: Any) -> Select[Any]:
            return (select(*columns).where(_RUNS.job_id == bindparam("job_id"), *older)
                    .order_by(_RUNS.id.desc()).limit(limit))

        # SQLite looks each visible job up in (job_id, id) and stops after cap + 1 entries.
        total = select(func.count()).select_from(
            select(_RUNS.id).where(_RUNS.job_id.in_(_VISIBLE_JOBS)).limit(cap + 1).subquery())
    return TeamStatements(_VISIBLE_JOBS, total, page(), page(_RUNS.id < bindparam("marker")))


def fetch(conn: Connection, found: TeamStatements, params: dict[str, Any], make: Callable[[Any], Any],
          key: Callable[[Any], str]) -> list[Any]:
    """Up to params["limit"] runs, newest first, as `make(row)`; params: org_id, team_ids, limit and
    optionally marker."""
    page = found.newest if params.get("marker") is None else found.older
    if dialect_of(conn).lateral:
        return [make(r) for r in conn.execute(page, params)]
    job_ids: Sequence[str] = conn.execute(found.job_ids, params).scalars().all()
    per_job = ([make(r) for r in conn.execute(page, {**params, "job_id": job_id})] for job_id in job_ids)
    merged = heapq.merge(*per_job, key=key, reverse=True)
    return list(itertools.islice(merged, params["limit"]))
