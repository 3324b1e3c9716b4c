"""Interactive Spark Connect sessions: create, list, describe, close, relaunch, proxy tokens.

Visibility (list, describe, close): members see their own sessions, team admins (CanManageSessions
in the team) see their teams' sessions, organization admins see all. Anyone else gets 404.
Only the owner gets `connectionInfo` and may relaunch; who may issue a proxy token (and keep using
it) is `auth.authz.may_use`: the owner while they can see the session's team, or an organization admin
(the Owner and Admin roles): CanManageSessions alone, a Team Admin's or one granted by a policy,
oversees sessions but does not act in them.

Creating a session commits the records first and then asks the controller to start the compute
instance, so a failed request never leaves a Sail process behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import authz
from sailplane.iam.auth.models import User
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import after_commit, checkpoint
from sailplane.kit.errors import ApiError, conflict, forbidden, invalid, not_found
from sailplane.kit.pagination import MarkerPage, apply_marker, count, split_marker
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.service_accounts.models import ServiceAccount
from sailplane.tenancy.teams.service import get_team
from sailplane.workloads import access, configs, session_states
from sailplane.workloads.controller import CLOSED_BY_USER, LiveView
from sailplane.workloads.instance_states import LIVE_INSTANCE_STATES, PROVISIONING, RUNNING
from sailplane.workloads.models import (
    SESSION_READY,
    SESSION_STARTING,
    ComputeInstance,
    InteractiveSession,
    WorkloadConfig,
)
from sailplane.workloads.schemas import CreateSessionRequest, IssueTokenRequest, SessionConfigRequest
from sailplane.workloads.session_states import CLOSED, OPEN_STATES, PENDING, TERMINAL_STATES

if TYPE_CHECKING:
    from sailplane.workloads.runtime import WorkloadRuntime

MIN_TOKEN_SECONDS = 60
NOTEBOOK_STOPPED = "notebook_stopped"
"""`terminationReason` of a notebook's session closed because the notebook stopped or failed."""


@dataclass
class SessionRecord:
    session: InteractiveSession
    live: LiveView | None
    owned: bool


@dataclass
class SessionPage:
    total: int
    records: list[SessionRecord]
    marker: str | None
    members: list[tuple[Member, User]] = field(default_factory=list)
    service_accounts: list[ServiceAccount] = field(default_factory=list)
    instances: list[ComputeInstance] = field(default_factory=list)
    configs: list[WorkloadConfig] = field(default_factory=list)


@dataclass(frozen=True)
class SessionFilter:
    team_id: str | None = None
    endpoint_type: str | None = None
    status: str | None = None


# --- who may see and do what ------------------------------------------------------------------


def _visible_stmt(principal: Principal) -> Any:
    stmt = select(InteractiveSession).where(InteractiveSession.organization_id == principal.organization_id)
    clause = authz.sessions_visible_to(principal)
    return stmt if clause is None else stmt.where(clause)


def _get(db: Session, principal: Principal, session_id: str) -> InteractiveSession:
    found: InteractiveSession | None = db.scalar(_visible_stmt(principal).where(InteractiveSession.id == session_id))
    if found is None:
        raise not_found("session")
    return found


def _record(principal: Principal, session: InteractiveSession, runtime: WorkloadRuntime | None) -> SessionRecord:
    live = runtime.controller.live_view(session.id) if runtime is not None and session.status in OPEN_STATES else None
    return SessionRecord(session, live, authz.owns(principal, session))


# --- reading ----------------------------------------------------------------------------------


def list_sessions(db: Session, principal: Principal, flt: SessionFilter, page: MarkerPage,
                  runtime: WorkloadRuntime | None) -> SessionPage:
    stmt = _visible_stmt(principal)
    if flt.team_id is not None:
        stmt = stmt.where(InteractiveSession.team_id == flt.team_id)
    if flt.endpoint_type is not None:
        stmt = stmt.where(InteractiveSession.endpoint_type == flt.endpoint_type)
    if flt.status is not None:
        stmt = stmt.where(InteractiveSession.status == flt.status)
    total = count(db, stmt)
    rows, marker = split_marker(list(db.scalars(apply_marker(stmt, InteractiveSession.id, page, newest_first=True))),
                                page)
    result = SessionPage(total, [_record(principal, s, runtime) for s in rows], marker)
    member_ids = sorted({s.member_id for s in rows if s.member_id})
    account_ids = sorted({s.service_account_id for s in rows if s.service_account_id})
    instance_ids = sorted({s.compute_instance_id for s in rows})
    config_ids = sorted({s.workload_config_id for s in rows})
    if member_ids:
        result.members = [(m, u) for m, u in db.execute(
            select(Member, User).join(User, User.id == Member.user_id).where(Member.id.in_(member_ids))
            .order_by(Member.id)).all()]
    if account_ids:
        result.service_accounts = list(db.scalars(
            select(ServiceAccount).where(ServiceAccount.id.in_(account_ids)).order_by(ServiceAccount.id)))
    if instance_ids:
        result.instances = list(db.scalars(
            select(ComputeInstance).where(ComputeInstance.id.in_(instance_ids)).order_by(ComputeInstance.id)))
    if config_ids:
        result.configs = list(db.scalars(
            select(WorkloadConfig).where(WorkloadConfig.id.in_(config_ids)).order_by(WorkloadConfig.id)))
    return result


def describe_session(db: Session, principal: Principal, session_id: str,
                     runtime: WorkloadRuntime | None) -> SessionRecord:
    return _record(principal, _get(db, principal, session_id), runtime)


# --- creating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lifecycle:
    idle_timeout: int
    idle_close_delay: int
    max_duration: int


def _lifecycle(requested: SessionConfigRequest | None, settings: Settings) -> _Lifecycle:
    """Requested timeouts, with server defaults for the ones left out, within the server's limits."""
    limit = settings.session_max_duration_limit_seconds
    req = requested or SessionConfigRequest()
    values = {
        "idleTimeoutSeconds": req.idle_timeout_seconds or settings.session_idle_timeout_seconds,
        "idleCloseDelaySeconds": (settings.session_idle_close_delay_seconds if req.idle_close_delay_seconds is None
                                  else req.idle_close_delay_seconds),
        "maxDurationSeconds": req.max_duration_seconds or min(settings.session_max_duration_seconds, limit),
    }
    for name, value in values.items():
        if value > limit:
            raise invalid(f"config.{name}", f"must be at most {limit} seconds")
    return _Lifecycle(values["idleTimeoutSeconds"], values["idleCloseDelaySeconds"], values["maxDurationSeconds"])


def _require_compute(runtime: WorkloadRuntime | None) -> WorkloadRuntime:
    if runtime is None or not runtime.controller.available:
        raise ApiError(503, "compute_unavailable", "Compute is not available on this server right now.",
                       retryable=True, retry_after=5)
    return runtime


def _may_create_in(db: Session, principal: Principal, team_id: str) -> None:
    get_team(db, principal, team_id)  # 404 when the team is not visible
    if not principal.has("CanCreateSessions", team_id):
        raise forbidden("This operation needs the CanCreateSessions permission in this team.")


def _shareable_instance(db: Session, config: WorkloadConfig, runtime: WorkloadRuntime) -> ComputeInstance | None:
    """A shared instance of this config, starting or running, with room for one more session.

    The row is locked (PostgreSQL) so the controller cannot release it while we attach to it.
    """
    limit = configs.session_limit(config)
    candidates = db.scalars(select(ComputeInstance.id).where(
        ComputeInstance.workload_config_id == config.id, ComputeInstance.node == runtime.node,
        ComputeInstance.shared.is_(True), ComputeInstance.status.in_(LIVE_INSTANCE_STATES),
    ).order_by(ComputeInstance.id)).all()
    for instance_id in candidates:
        if not runtime.controller.instance_usable(instance_id):
            continue
        row = db.scalar(select(ComputeInstance).where(ComputeInstance.id == instance_id).with_for_update())
        if row is None or row.status not in LIVE_INSTANCE_STATES:
            continue
        if limit:
            used = db.scalar(select(func.count()).select_from(InteractiveSession).where(
                InteractiveSession.compute_instance_id == instance_id, InteractiveSession.status.in_(OPEN_STATES)))
            if (used or 0) >= limit:
                continue
        return row
    return None


def _open(db: Session, principal: Principal, runtime: WorkloadRuntime, *, config: WorkloadConfig, team_id: str,
          name: str | None, endpoint_type: str, lifecycle: _Lifecycle, metadata: dict[str, str], allow_shared: bool,
          notebook_id: str | None, relaunched_from: str | None) -> tuple[InteractiveSession, bool]:
    """Add the session (and a new instance unless a shared one is reused). Returns (session, new instance?)."""
    instance = _shareable_instance(db, config, runtime) if allow_shared else None
    fresh = instance is None
    if instance is None:
        instance = ComputeInstance(
            organization_id=principal.organization_id, workload_config_id=config.id, cluster_id=config.cluster_id,
            backend="local", node=runtime.node, status=PROVISIONING, shared=allow_shared,
            created_by=principal.actor_id, updated_by=principal.actor_id,
        )
        db.add(instance)
        db.flush()
    now = utcnow()
    session = InteractiveSession(
        organization_id=principal.organization_id, team_id=team_id,
        member_id=principal.member.id if principal.member is not None else None,
        service_account_id=authz.service_account_id(principal), notebook_id=notebook_id,
        workload_config_id=config.id, compute_instance_id=instance.id, relaunched_from_id=relaunched_from,
        endpoint_type=endpoint_type, name=name or config.name or "Spark Connect session", status=PENDING,
        status_message=SESSION_READY if instance.status == RUNNING else SESSION_STARTING,
        allow_shared=allow_shared, idle_timeout_seconds=lifecycle.idle_timeout,
        idle_close_delay_seconds=lifecycle.idle_close_delay, max_duration_seconds=lifecycle.max_duration,
        session_metadata=metadata, timeout_at=now + timedelta(seconds=lifecycle.max_duration),
        created_at=now, updated_at=now, created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(session)
    db.flush()
    return session, fresh


def _started(runtime: WorkloadRuntime, session: InteractiveSession, config: WorkloadConfig, fresh: bool) -> None:
    encryptor = Encryptor(runtime.settings.secret_key)
    spec = configs.instance_spec(config, session.compute_instance_id, encryptor) if fresh else None
    runtime.controller.session_opened(session.id, session.compute_instance_id, spec, config.cluster_id)


def create_session(db: Session, principal: Principal, body: CreateSessionRequest, ctx: RequestContext,
                   settings: Settings, runtime: WorkloadRuntime | None) -> SessionRecord:
    rt = _require_compute(runtime)
    if body.member_id is not None and (principal.member is None or body.member_id != principal.member.id):
        raise invalid("memberId", "sessions can only be created for yourself")
    if body.service_account_id is not None and body.service_account_id != authz.service_account_id(principal):
        raise invalid("serviceAccountId", "sessions can only be created for the calling service account")
    if body.notebook_id is not None:
        raise not_found("notebook")  # notebooks attach their own sessions; none exists with this ID
    if body.workload_config_id is not None and body.workload_config is not None:
        raise invalid("workloadConfig", "give either workloadConfigId or workloadConfig, not both")
    lifecycle = _lifecycle(body.config, settings)
    if body.workload_config_id is not None:
        found = configs.find_config(db, principal, body.workload_config_id)
        if found is None:
            raise invalid("workloadConfigId", f"unknown workload config {body.workload_config_id}")
        config = found
        if body.team_id is not None and body.team_id != config.team_id:
            raise invalid("teamId", "must be the team of the workload config")
        team_id = config.team_id
        _may_create_in(db, principal, team_id)
    else:
        if body.team_id is None:
            raise invalid("teamId", "is required when no workloadConfigId is given")
        team_id = body.team_id
        _may_create_in(db, principal, team_id)
        config = configs.resolve_inline_config(db, principal, team_id, body.workload_config, settings)
    session, fresh = _open(
        db, principal, rt, config=config, team_id=team_id, name=body.name, endpoint_type=body.endpoint_type,
        lifecycle=lifecycle, metadata=dict(body.metadata or {}), allow_shared=body.allow_shared,
        notebook_id=None, relaunched_from=None,
    )
    audit.record(db, ctx, principal, "session.create", "session", session.id, details={
        "teamId": team_id, "workloadConfigId": config.id, "computeInstanceId": session.compute_instance_id,
        "sharedInstance": not fresh})
    checkpoint(db)  # the controller reads the committed row on its own connection
    _started(rt, session, config, fresh)
    return _record(principal, session, rt)


def relaunch_session(db: Session, principal: Principal, session_id: str, ctx: RequestContext,
                     runtime: WorkloadRuntime | None) -> SessionRecord:
    rt = _require_compute(runtime)
    original = _get(db, principal, session_id)
    if not authz.owns(principal, original):
        raise forbidden("Only the session owner can relaunch it.")
    if original.status not in TERMINAL_STATES:
        raise conflict("session_not_terminal", "Only a closed or failed session can be relaunched.")
    _may_create_in(db, principal, original.team_id)
    config = db.get(WorkloadConfig, original.workload_config_id)
    if config is None:
        raise not_found("workload config")
    lifecycle = _Lifecycle(original.idle_timeout_seconds, original.idle_close_delay_seconds,
                           original.max_duration_seconds)
    session, fresh = _open(
        db, principal, rt, config=config, team_id=original.team_id, name=original.name,
        endpoint_type=original.endpoint_type, lifecycle=lifecycle, metadata=dict(original.session_metadata or {}),
        allow_shared=original.allow_shared, notebook_id=original.notebook_id, relaunched_from=original.id,
    )
    audit.record(db, ctx, principal, "session.relaunch", "session", session.id, details={
        "relaunchedFrom": original.id, "computeInstanceId": session.compute_instance_id})
    checkpoint(db)  # the controller reads the committed row on its own connection
    _started(rt, session, config, fresh)
    return _record(principal, session, rt)


# --- closing and tokens -----------------------------------------------------------------------


def close_session(db: Session, principal: Principal, session_id: str, ctx: RequestContext,
                  runtime: WorkloadRuntime | None) -> None:
    """Closed at once (calls are refused from now on); the instance is released by the controller."""
    session = _get(db, principal, session_id)
    if session.status in TERMINAL_STATES:
        return  # already over: closing again changes nothing
    now = utcnow()
    if not session_states.transition(db, session.id, CLOSED, source=OPEN_STATES, now=now,
                                     values={"termination_reason": CLOSED_BY_USER, "updated_by": principal.actor_id}):
        db.rollback()
        return  # it ended in the meantime (timeout or failure)
    audit.record(db, ctx, principal, "session.close", "session", session.id, details={"reason": CLOSED_BY_USER})
    if runtime is not None:
        controller = runtime.controller
        after_commit(db, lambda: controller.session_ended(session.id, CLOSED))


def _issued_via(principal: Principal) -> str:
    """The credential behind the request, named in the token so the gateway can tell when it is revoked."""
    identity = principal.identity
    if identity.login is not None:
        return f"{access.VIA_LOGIN}{identity.login.id}"
    assert identity.api_key is not None
    return f"{access.VIA_API_KEY}{identity.api_key.id}"


def issue_token(db: Session, principal: Principal, session_id: str, body: IssueTokenRequest | None,
                ctx: RequestContext, settings: Settings, runtime: WorkloadRuntime | None) -> tuple[str, datetime]:
    session = _get(db, principal, session_id)
    if not authz.may_use(principal, session):
        if authz.owns(principal, session):
            raise forbidden("You no longer belong to this session's team, so it cannot be used any more.")
        raise forbidden("Only the session owner or an organization admin can issue a session token.")
    longest = settings.session_token_max_seconds
    requested = body.duration_seconds if body else None
    duration = requested if requested is not None else min(settings.session_token_default_seconds, longest)
    if not MIN_TOKEN_SECONDS <= duration <= longest:
        raise invalid("durationSeconds", f"must be between {MIN_TOKEN_SECONDS} and {longest} seconds")
    if session.status in TERMINAL_STATES:
        raise conflict("session_closed", f"The session is {session.status}; relaunch it to get a new session.")
    rt = _require_compute(runtime)
    issued = int(time.time())
    token = rt.keys.issue(session.id, principal.actor_id, duration, now=issued, extra_claims={
        "org": session.organization_id, "endpoint": session.endpoint_type, "via": _issued_via(principal)})
    audit.record(db, ctx, principal, "session.issue_token", "session", session.id,
                 details={"durationSeconds": duration})
    db.flush()
    return token, datetime.fromtimestamp(issued + duration, UTC)


# --- notebooks' sessions ------------------------------------------------------------------------


def open_notebook_session(db: Session, owner: Principal, runtime: WorkloadRuntime, config: WorkloadConfig,
                          notebook_id: str, name: str) -> InteractiveSession:
    """A session of the notebook's owner on its workload config (a compute instance of its own), for the
    marimo kernel. Its timeouts are the longest the server allows: the notebook controller stops the
    notebook (and closes this session) by the notebook's own timeouts. Call `notebook_session_opened`
    once it is committed."""
    limit = runtime.settings.session_max_duration_limit_seconds
    session, _ = _open(db, owner, runtime, config=config, team_id=config.team_id, name=name,
                       endpoint_type="spark_connect", lifecycle=_Lifecycle(limit, limit, limit),
                       metadata={"notebookId": notebook_id}, allow_shared=False, notebook_id=notebook_id,
                       relaunched_from=None)
    return session


def notebook_session_opened(runtime: WorkloadRuntime, session: InteractiveSession, config: WorkloadConfig) -> None:
    """After the commit of `open_notebook_session`: the session controller starts its Sail server."""
    _started(runtime, session, config, True)


def notebook_token(runtime: WorkloadRuntime, session: InteractiveSession, notebook_id: str) -> str:
    """A session token for the notebook's kernel, held by the notebook's owner through the notebook (the
    gateway re-validates it like any holder: `workloads.holders`)."""
    duration = runtime.settings.session_token_max_seconds
    assert session.member_id is not None
    return runtime.keys.issue(session.id, session.member_id, duration, extra_claims={
        "org": session.organization_id, "endpoint": session.endpoint_type,
        "via": f"{access.VIA_NOTEBOOK}{notebook_id}"})


def close_notebook_session(db: Session, session_id: str, message: str | None = None) -> bool:
    """Close the notebook's session (the notebook stopped or failed); True when it was open. Call
    `notebook_session_closed` after the commit."""
    values: dict[str, Any] = {"termination_reason": NOTEBOOK_STOPPED}
    if message:
        values["status_message"] = message[:2000]
    return session_states.transition(db, session_id, CLOSED, source=OPEN_STATES, values=values)


def notebook_session_closed(runtime: WorkloadRuntime, session_id: str) -> None:
    runtime.controller.session_ended(session_id, CLOSED)
