"""Notebook records: create, list, describe, update, delete, sharing with teams, and the source with
its revisions.

Visibility (`auth.authz.notebooks_visible_to`): the owner, members of the teams it is shared with,
organization admins; anything else (another team's or organization's notebook) is 404. Changing,
sharing or deleting needs `authz.may_manage_notebook` (403). The workload config must be one the
caller can see (else 404, as for one that does not exist) in a team where they hold
CanManageNotebooks (403); it changes only while the notebook is stopped (409 naming the state).

Source (beyond the seed; `/workloads/notebooks/{notebook}/source` and `.../source/revisions`): the
marimo `.py` text is stored in the notebook row; a new notebook starts from `template.TEMPLATE`.
Every replacement or restore keeps the replaced text as a revision (at most MAX_REVISIONS, the
oldest dropped); text is UTF-8 without NUL, at most MAX_SOURCE_BYTES (413), checked before anything
is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session

from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.db import after_commit, checkpoint
from sailplane.kit.errors import ApiError, conflict, forbidden, invalid, not_found
from sailplane.kit.pagination import count
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.teams.models import Team
from sailplane.tenancy.teams.service import get_team, with_member_counts
from sailplane.workloads import configs
from sailplane.workloads.models import WorkloadConfig
from sailplane.workloads.notebooks.models import Notebook, NotebookRevision, NotebookTeam
from sailplane.workloads.notebooks.schemas import (
    MAX_REVISIONS,
    MAX_SOURCE_BYTES,
    CreateNotebookRequest,
    UpdateNotebookRequest,
)
from sailplane.workloads.notebooks.states import (
    AT_REST_STATES,
    IDLE,
    LIVE_STATES,
    OPENABLE_STATES,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    transition,
)
from sailplane.workloads.notebooks.template import TEMPLATE

MANAGE = authz.MANAGE_NOTEBOOKS
WIRE_NAMES = {"workload_config_id": "workloadConfigId", "name": "name", "description": "description",
              "idle_timeout_seconds": "idleTimeoutSeconds", "detached_timeout_seconds": "detachedTimeoutSeconds"}


@dataclass
class NotebookListing:
    """Notebooks in order, each with its team IDs, plus the teams (with member counts) and workload
    configs the caller can see."""

    total: int
    notebooks: list[Notebook]
    team_ids: dict[str, list[str]]
    teams: list[tuple[Team, int]] = field(default_factory=list)
    configs: list[WorkloadConfig] = field(default_factory=list)


# --- visibility and checks ----------------------------------------------------------------------

def _visible(principal: Principal) -> Select[Notebook]:
    stmt = select(Notebook).where(Notebook.organization_id == principal.organization_id)
    clause = authz.notebooks_visible_to(principal)
    return stmt if clause is None else stmt.where(clause)


def get_notebook(db: Session, principal: Principal, notebook_id: str, *, lock: bool = False) -> Notebook:
    """The notebook if the caller may see it; 404 otherwise (also for other organizations)."""
    stmt = _visible(principal).where(Notebook.id == notebook_id)
    if lock:
        stmt = stmt.with_for_update()
    found = db.scalar(stmt)
    if found is None:
        raise not_found("notebook")
    return found


def _team_ids(db: Session, notebook_ids: Sequence[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {i: [] for i in notebook_ids}
    if notebook_ids:
        rows = db.execute(select(NotebookTeam.notebook_id, NotebookTeam.team_id)
                          .where(NotebookTeam.notebook_id.in_(list(notebook_ids)))
                          .order_by(NotebookTeam.created_at, NotebookTeam.team_id))
        for notebook_id, team_id in rows:
            result[notebook_id].append(team_id)
    return result


def _require_manage(principal: Principal, notebook: Notebook) -> None:
    if not authz.may_manage_notebook(principal, notebook):
        raise forbidden("Only the notebook's owner or an organization admin can change it.")


def _check_teams(db: Session, principal: Principal, team_ids: Sequence[str]) -> list[str]:
    """Teams of this organization the caller can see (their own, or all for organization admins); any
    other is answered as unknown (422), revealing nothing."""
    wanted = list(dict.fromkeys(team_ids))
    found = set(db.scalars(select(Team.id).where(Team.organization_id == principal.organization_id,
                                                 Team.id.in_(wanted)))) if wanted else set()
    unknown = [t for t in wanted if t not in found or not authz.can_see_team(principal, t)]
    if unknown:
        raise invalid("teamIds", f"unknown team {', '.join(unknown)}")
    return wanted


def _usable_config(db: Session, principal: Principal, config_id: str) -> WorkloadConfig:
    """A named workload config the caller can see (else 404) in a team where they may manage notebooks
    (else 403): the notebook's Sail session runs with it, in that team."""
    config = configs.find_config(db, principal, config_id)
    if config is None or config.inline:
        raise not_found("workload config")
    if not principal.has(MANAGE, config.team_id):
        raise forbidden(f"This operation needs the {MANAGE} permission in the workload config's team.")
    return config


def _touch(notebook: Notebook, principal: Principal) -> None:
    notebook.updated_at = utcnow()
    notebook.updated_by = principal.actor_id


# --- listings -----------------------------------------------------------------------------------

def _listing(db: Session, principal: Principal, notebooks: list[Notebook], total: int) -> NotebookListing:
    ids = [n.id for n in notebooks]
    team_ids = _team_ids(db, ids)
    shown = sorted({t for ts in team_ids.values() for t in ts if principal.can_see_team(t)})
    teams = with_member_counts(db, shown)
    config_ids = sorted({n.workload_config_id for n in notebooks})
    found = [configs.find_config(db, principal, c) for c in config_ids]
    return NotebookListing(total, notebooks, team_ids, teams, [c for c in found if c is not None])


def _limited(db: Session, principal: Principal, stmt: Select[Notebook], limit: int) -> NotebookListing:
    rows = list(db.scalars(stmt.order_by(Notebook.id.desc()).limit(limit)))
    total = len(rows) if len(rows) < limit else count(db, stmt)
    return _listing(db, principal, rows, total)


def list_notebooks(db: Session, principal: Principal, limit: int) -> NotebookListing:
    """Newest first: the caller's own, those shared with their teams; every one for organization admins."""
    return _limited(db, principal, _visible(principal), limit)


def list_for_team(db: Session, principal: Principal, team_id: str, limit: int) -> NotebookListing:
    """Notebooks shared with the team (404 for a team the caller cannot see)."""
    team = get_team(db, principal, team_id)
    shared = select(NotebookTeam.notebook_id).where(NotebookTeam.team_id == team.id)
    return _limited(db, principal, _visible(principal).where(Notebook.id.in_(shared)), limit)


def describe(db: Session, principal: Principal, notebook_id: str) -> NotebookListing:
    return _listing(db, principal, [get_notebook(db, principal, notebook_id)], 1)


# --- notebooks ----------------------------------------------------------------------------------

def create_notebook(db: Session, principal: Principal, body: CreateNotebookRequest,
                    ctx: RequestContext) -> NotebookListing:
    """A stopped notebook with the template source, owned by the calling member."""
    if principal.member is None:
        raise forbidden("Notebooks belong to members: a service account cannot own one.")
    config = _usable_config(db, principal, body.workload_config_id)
    team_ids = _check_teams(db, principal, body.team_ids)
    actor = principal.actor_id
    now = utcnow()
    notebook = Notebook(
        organization_id=principal.organization_id, member_id=principal.member.id, workload_config_id=config.id,
        name=body.name, description=body.description, status=STOPPED,
        idle_timeout_seconds=body.idle_timeout_seconds, detached_timeout_seconds=body.detached_timeout_seconds,
        source=TEMPLATE, source_updated_at=now, source_updated_by=actor,
        created_at=now, created_by=actor, updated_at=now, updated_by=actor,
    )
    db.add(notebook)
    db.flush()
    for team_id in team_ids:
        db.add(NotebookTeam(notebook_id=notebook.id, team_id=team_id, created_by=actor, updated_by=actor))
    audit.record(db, ctx, principal, "notebook.create", "notebook", notebook.id,
                 details={"name": notebook.name, "workloadConfigId": config.id, "teamIds": team_ids})
    db.flush()  # the request commits (kit.db: the unit of work)
    return _listing(db, principal, [notebook], 1)


def update_notebook(db: Session, principal: Principal, notebook_id: str, body: UpdateNotebookRequest,
                    ctx: RequestContext) -> Notebook:
    """Only the given fields change; the workload config only while the notebook is stopped."""
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_manage(principal, notebook)
    given = body.model_fields_set
    if "workload_config_id" in given and body.workload_config_id != notebook.workload_config_id:
        assert body.workload_config_id is not None
        config = _usable_config(db, principal, body.workload_config_id)
        # Compare-and-set: a start racing this request either sees the new config or makes this a 409.
        changed = db.execute(update(Notebook).where(Notebook.id == notebook.id, Notebook.status == STOPPED)
                             .values(workload_config_id=config.id)).rowcount  # type: ignore[attr-defined]
        if not changed:
            db.rollback()
            status = db.scalar(select(Notebook.status).where(Notebook.id == notebook_id))
            raise conflict("notebook_not_stopped", f"The notebook is {status}: its workload config can only "
                                                   "change while it is stopped; stop it first.")
        db.refresh(notebook)
    for name in ("name", "description", "idle_timeout_seconds", "detached_timeout_seconds"):
        if name in given:
            setattr(notebook, name, getattr(body, name))
    if given:
        _touch(notebook, principal)
    audit.record(db, ctx, principal, "notebook.update", "notebook", notebook.id,
                 details={"fields": sorted(WIRE_NAMES[f] for f in given)})
    db.flush()  # the request commits (kit.db: the unit of work)
    return notebook


def delete_notebook(db: Session, principal: Principal, notebook_id: str, ctx: RequestContext,
                    stop_live: Callable[[str], bool] | None = None) -> None:
    """The notebook with its team links and revisions (the rows cascade). A live notebook is stopped first:
    `stop_live` (the notebook controller's) waits until it is (False: it did not in time: 409, retry)."""
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_manage(principal, notebook)
    if notebook.status in LIVE_STATES:
        if notebook.status != STOPPING:
            transition(db, notebook.id, STOPPING, values={"updated_by": principal.actor_id})
        checkpoint(db)  # the notebook controller (its own connection) stops it
        if stop_live is None or not stop_live(notebook.id):
            raise conflict("notebook_stopping", "The notebook is still stopping; delete it again in a moment.")
        notebook = get_notebook(db, principal, notebook_id, lock=True)
    details = {"name": notebook.name, "status": notebook.status}
    db.execute(delete(NotebookRevision).where(NotebookRevision.notebook_id == notebook.id))
    db.execute(delete(NotebookTeam).where(NotebookTeam.notebook_id == notebook.id))
    db.execute(delete(Notebook).where(Notebook.id == notebook.id))
    audit.record(db, ctx, principal, "notebook.delete", "notebook", notebook.id, details=details)
    db.flush()  # the request commits (kit.db: the unit of work)


# --- start, stop, activity ---------------------------------------------------------------------

def _status(db: Session, notebook_id: str) -> str | None:
    return db.scalar(select(Notebook.status).where(Notebook.id == notebook_id))


def start_notebook(db: Session, principal: Principal, notebook_id: str, ctx: RequestContext, node: str | None,
                   wake: Callable[[], None] | None) -> Notebook:
    """stopped/failed → starting, on this node (`node`; None: this server runs no compute, 503); the notebook
    controller (`wake`) then opens its Sail session and starts its marimo server."""
    if node is None:
        raise ApiError(503, "compute_unavailable", "Compute is not available on this server right now.",
                       retryable=True, retry_after=5)
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_manage(principal, notebook)
    cleared = {"node": node, "status_message": None, "session_id": None, "server_ref": None, "server_host": None,
               "server_port": None, "server_secret": None, "started_at": None, "detached_at": None,
               "updated_by": principal.actor_id}
    if not transition(db, notebook.id, STARTING, source=AT_REST_STATES, values=cleared):
        db.rollback()
        raise conflict("notebook_not_stopped", f"The notebook is {_status(db, notebook_id)}; only a stopped or "
                                               "failed notebook can be started.")
    audit.record(db, ctx, principal, "notebook.start", "notebook", notebook.id, details={"node": node})
    db.flush()  # the request commits (kit.db: the unit of work); then the controller starts it
    db.refresh(notebook)
    if wake is not None:
        after_commit(db, wake)
    return notebook


def stop_notebook(db: Session, principal: Principal, notebook_id: str, ctx: RequestContext,
                  wake: Callable[[], None] | None) -> Notebook:
    """starting/running/idle/detached → stopping; the notebook controller of its node saves the source marimo
    wrote, stops marimo and closes the Sail session, then → stopped."""
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_manage(principal, notebook)
    if not transition(db, notebook.id, STOPPING, source=(STARTING, *OPENABLE_STATES),
                      values={"updated_by": principal.actor_id, "status_message": None}):
        db.rollback()
        raise conflict("notebook_not_running", f"The notebook is {_status(db, notebook_id)}; only a starting, "
                                               "running, idle or detached notebook can be stopped.")
    audit.record(db, ctx, principal, "notebook.stop", "notebook", notebook.id)
    db.flush()  # the request commits (kit.db: the unit of work); then the controller stops it
    db.refresh(notebook)
    if wake is not None:
        after_commit(db, wake)
    return notebook


def ping_notebook(db: Session, principal: Principal, notebook_id: str) -> None:
    """Someone who may open the notebook has it open: its activity clock restarts (idle → running)."""
    notebook = get_notebook(db, principal, notebook_id)
    if notebook.status not in OPENABLE_STATES:
        raise conflict("notebook_not_open", f"The notebook is {notebook.status}; activity is recorded only while "
                                            "it is running, idle or detached.")
    now = utcnow()
    db.execute(update(Notebook).where(Notebook.id == notebook.id, Notebook.status.in_(OPENABLE_STATES))
               .values(last_active_at=now))
    transition(db, notebook.id, RUNNING, source=(IDLE,), now=now)
    db.flush()  # the request commits (kit.db: the unit of work)


# --- sharing ------------------------------------------------------------------------------------

def list_team_links(db: Session, principal: Principal, notebook_id: str, limit: int) -> list[NotebookTeam]:
    notebook = get_notebook(db, principal, notebook_id)
    return list(db.scalars(select(NotebookTeam).where(NotebookTeam.notebook_id == notebook.id)
                           .order_by(NotebookTeam.created_at, NotebookTeam.team_id).limit(limit)))


def add_teams(db: Session, principal: Principal, notebook_id: str, team_ids: Sequence[str],
              ctx: RequestContext) -> list[NotebookTeam]:
    """Idempotent: teams already linked keep their link; returns the links of the given teams."""
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_manage(principal, notebook)
    wanted = _check_teams(db, principal, team_ids)
    current = set(_team_ids(db, [notebook.id])[notebook.id])
    added = [t for t in wanted if t not in current]
    for team_id in added:
        db.add(NotebookTeam(notebook_id=notebook.id, team_id=team_id, created_by=principal.actor_id,
                            updated_by=principal.actor_id))
    if added:
        _touch(notebook, principal)
    audit.record(db, ctx, principal, "notebook.add_teams", "notebook", notebook.id,
                 details={"teamIds": wanted, "added": added})
    db.flush()  # the request commits (kit.db: the unit of work)
    return list(db.scalars(select(NotebookTeam).where(NotebookTeam.notebook_id == notebook.id,
                                                      NotebookTeam.team_id.in_(wanted))
                           .order_by(NotebookTeam.created_at, NotebookTeam.team_id)))


def remove_team(db: Session, principal: Principal, notebook_id: str, team_id: str, ctx: RequestContext) -> None:
    """The team's members lose access unless they own the notebook or reach it through another team."""
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_manage(principal, notebook)
    removed = db.execute(delete(NotebookTeam).where(NotebookTeam.notebook_id == notebook.id,
                                                    NotebookTeam.team_id == team_id)).rowcount  # type: ignore[attr-defined]
    if not removed:
        db.rollback()
        raise not_found("team")
    _touch(notebook, principal)
    audit.record(db, ctx, principal, "notebook.remove_team", "notebook", notebook.id, details={"teamId": team_id})
    db.flush()  # the request commits (kit.db: the unit of work)


# --- source and revisions -----------------------------------------------------------------------

def get_source(db: Session, principal: Principal, notebook_id: str) -> Notebook:
    return get_notebook(db, principal, notebook_id)


def decode_source(raw: bytes) -> str:
    """The uploaded `.py` file as text: at most MAX_SOURCE_BYTES (413), UTF-8 (422), no NUL (422)."""
    if len(raw) > MAX_SOURCE_BYTES:
        raise ApiError(413, "source_too_large", f"A notebook's source is at most {MAX_SOURCE_BYTES} bytes; "
                                                f"this one has {len(raw)}.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid("body", f"must be UTF-8 text (invalid byte at offset {exc.start})") from None
    if "\x00" in text:
        raise invalid("body", "must not contain NUL characters")
    return text.removeprefix("\ufeff")


def may_edit_source(db: Session, principal: Principal, notebook: Notebook) -> bool:
    """Whether the caller may change the notebook's source (here or, while its owner is away, in marimo)."""
    return authz.may_edit_notebook_source(principal, notebook, _team_ids(db, [notebook.id])[notebook.id])


def _require_edit(db: Session, principal: Principal, notebook: Notebook) -> None:
    if not may_edit_source(db, principal, notebook):
        raise forbidden(f"Changing the source needs the {MANAGE} permission in one of the notebook's teams.")


def _replace(db: Session, principal: Principal, notebook: Notebook, text: str) -> str | None:
    """The new current source; the replaced one becomes a revision (None when the text is the same)."""
    return _replace_by(db, principal.actor_id, notebook, text)


def _replace_by(db: Session, actor_id: str | None, notebook: Notebook, text: str) -> str | None:
    if text == notebook.source:
        return None
    now = utcnow()
    revision = NotebookRevision(notebook_id=notebook.id, source=notebook.source,
                                size=len(notebook.source.encode()), created_at=now, created_by=actor_id)
    db.add(revision)
    db.flush()
    notebook.source, notebook.source_updated_at, notebook.source_updated_by = text, now, actor_id
    keep = (select(NotebookRevision.id).where(NotebookRevision.notebook_id == notebook.id)
            .order_by(NotebookRevision.id.desc()).limit(MAX_REVISIONS))
    db.execute(delete(NotebookRevision).where(NotebookRevision.notebook_id == notebook.id,
                                              NotebookRevision.id.not_in(keep.scalar_subquery())))
    return revision.id


def replace_source(db: Session, principal: Principal, notebook_id: str, raw: bytes,
                   ctx: RequestContext) -> tuple[Notebook, str | None]:
    text = decode_source(raw)
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_edit(db, principal, notebook)
    revision_id = _replace(db, principal, notebook, text)
    audit.record(db, ctx, principal, "notebook.source.replace", "notebook", notebook.id,
                 details={"size": len(text.encode()), "revisionId": revision_id})
    db.flush()  # the request commits (kit.db: the unit of work)
    return notebook, revision_id


def list_revisions(db: Session, principal: Principal, notebook_id: str,
                   limit: int) -> tuple[int, list[NotebookRevision]]:
    notebook = get_notebook(db, principal, notebook_id)
    stmt = select(NotebookRevision).where(NotebookRevision.notebook_id == notebook.id)
    rows = list(db.scalars(stmt.order_by(NotebookRevision.id.desc()).limit(limit)))
    return (len(rows) if len(rows) < limit else count(db, stmt)), rows


def get_revision(db: Session, principal: Principal, notebook_id: str, revision_id: str) -> NotebookRevision:
    notebook = get_notebook(db, principal, notebook_id)
    found = db.scalar(select(NotebookRevision).where(NotebookRevision.notebook_id == notebook.id,
                                                     NotebookRevision.id == revision_id))
    if found is None:
        raise not_found("revision")
    return found


def restore_revision(db: Session, principal: Principal, notebook_id: str, revision_id: str,
                     ctx: RequestContext) -> tuple[Notebook, str | None]:
    """The revision's text becomes the current source; the replaced source becomes a revision too."""
    notebook = get_notebook(db, principal, notebook_id, lock=True)
    _require_edit(db, principal, notebook)
    found = db.scalar(select(NotebookRevision.source).where(NotebookRevision.notebook_id == notebook.id,
                                                            NotebookRevision.id == revision_id))
    if found is None:
        raise not_found("revision")
    new_revision = _replace(db, principal, notebook, found)
    details: dict[str, Any] = {"restoredRevisionId": revision_id, "revisionId": new_revision}
    audit.record(db, ctx, principal, "notebook.source.restore", "notebook", notebook.id, details=details)
    db.flush()  # the request commits (kit.db: the unit of work)
    return notebook, new_revision


def save_server_source(db: Session, notebook_id: str, text: str) -> str | None:
    """The source as the notebook's marimo server saved it (read back at stop) becomes the current source,
    written by the notebook's owner (who edits it in marimo); the replaced one becomes a revision. Text
    that is too large or has NUL is not taken (the stored source stays). Returns the revision's ID."""
    notebook = db.scalar(select(Notebook).where(Notebook.id == notebook_id).with_for_update())
    if notebook is None or len(text.encode()) > MAX_SOURCE_BYTES or "\x00" in text:
        return None
    return _replace_by(db, notebook.member_id, notebook, text)
