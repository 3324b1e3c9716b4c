"""The queries of the run listings (listJobRuns, listMyJobRuns) and the one builder of a run's JSON
(`RUN_VIEW`: JobRunView's fields, kit.views), used by describe, the listings, the changes and the jobs'
latest runs alike.

A listed run goes from its row straight into the response: validating 100 models only to dump them
again was most of a listing's time, and so was attribute access on ORM objects or Rows. The database
formats the timestamps (kit.wire_sql). Statements are built once per scope: building (and cache-keying)
a select of 18 columns costs more than running it on a warm connection.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, select

from sailplane.kit.views import row_view
from sailplane.workloads.jobs.models import Job, JobVersion
from sailplane.workloads.jobs.schemas import JobRunView, RunResults
from sailplane.workloads.runs.models import JobRun

TOTAL_CAP = 10_000
RunJson = dict[str, Any]  # a run as JobRunView's JSON, ready to encode

_RUNS = JobRun.__table__.c  # plain columns: the statements skip the ORM's per-statement work
RUN_VIEW = row_view(JobRunView, JobRun.__table__, nested={"results": RunResults})
LISTED_COLUMNS = RUN_VIEW.columns


def run_json(run: JobRun) -> RunJson:
    """A run (ORM object) as JobRunView's JSON: the same builder as the listings' rows."""
    return RUN_VIEW.of(run)


def run_id(run: RunJson) -> str:
    return run["id"]  # type: ignore[no-any-return]


# Which runs a listing covers, by scope; the values are bound per request. Each scope's first
# condition is the leading column of an index ending in id: (job_id, id) or (organization_id, id).
_SCOPES: dict[str, tuple[ColumnElement[bool], ...]] = {
    "job": (_RUNS.job_id == bindparam("job_id"),),
    "org": (_RUNS.organization_id == bindparam("org_id"),),
}
JOBS_WITH_VERSIONS = (
    select(Job, JobVersion)
    .join(JobVersion, and_(JobVersion.job_id == Job.id, JobVersion.version == Job.current_version))
    .where(Job.id.in_(bindparam("job_ids", expanding=True)))
    .order_by(Job.id)
)


class PageStatements(NamedTuple):
    first: Select[Any]  # the newest :limit runs; every row ends with the capped total (one round trip)
    after: Select[Any]  # the newest :limit runs older than :marker


@functools.cache
def page_statements(scope: str) -> PageStatements:
    """Keyset pagination: `id < :marker ORDER BY id DESC LIMIT :limit`, never OFFSET. The first
    page's total is an uncorrelated scalar subquery (evaluated once) that reads at most
    TOTAL_CAP + 1 index entries, whatever the table size."""
    where = _SCOPES[scope]
    total = select(func.count()).select_from(select(_RUNS.id).where(*where).limit(TOTAL_CAP + 1).subquery())
    newest = select(*LISTED_COLUMNS).where(*where).order_by(_RUNS.id.desc()).limit(bindparam("limit"))
    return PageStatements(first=newest.add_columns(total.scalar_subquery().label("total")),
                          after=newest.where(_RUNS.id < bindparam("marker")))
