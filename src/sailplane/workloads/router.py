"""HTTP routes for /workloads/sessions and /workloads/compute-configs (workload configs)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from sailplane.iam.auth.deps import AppSettings, CurrentPrincipal, Db
from sailplane.iam.auth.models import User
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.service_accounts.models import ServiceAccount
from sailplane.workloads import configs, service
from sailplane.workloads.instance_states import LIVE_INSTANCE_STATES
from sailplane.workloads.models import READINESS_MESSAGES, ComputeInstance, WorkloadConfig
from sailplane.workloads.runtime import WorkloadRuntime
from sailplane.workloads.schemas import (
    SESSION_CLOSED,
    ConnectionInfo,
    CreateSessionRequest,
    CreateWorkloadConfigRequest,
    IssueTokenRequest,
    MemberRef,
    ServiceAccountRef,
    SessionConfigView,
    SessionIncluded,
    SessionItem,
    SessionList,
    SessionMessage,
    SessionToken,
    SessionView,
    WorkloadConfigList,
    WorkloadConfigView,
    WorkloadView,
)
from sailplane.workloads.session_states import IDLE, PENDING

router = APIRouter(route_class=JsonRoute, prefix="/workloads", tags=["sessions"])
Ctx = Annotated[RequestContext, Depends(request_context)]
SessionId = Annotated[str, Path(pattern=ID_PATTERN, description="A session ID.")]
WorkloadConfigId = Annotated[str, Path(alias="workloadConfig", pattern=ID_PATTERN,
                                       description="A workload config ID.")]
TeamFilter = Annotated[str | None, Query(alias="teamId", min_length=1, max_length=20, pattern=ID_PATTERN,
                                         description="Filter by team.")]
Page = Annotated[MarkerPage, Depends(marker_params)]


def get_runtime(request: Request) -> WorkloadRuntime | None:
    return getattr(request.app.state, "workloads", None)


Runtime = Annotated[WorkloadRuntime | None, Depends(get_runtime)]


# --- views ------------------------------------------------------------------------------------


def config_view(row: WorkloadConfig) -> WorkloadConfigView:
    return WorkloadConfigView(
        id=row.id, name=row.name, workload_type=row.workload_type, cluster_id=row.cluster_id, team_id=row.team_id,
        config=row.config, endpoint_limits=row.endpoint_limits, created_at=row.created_at,
        created_by=row.created_by, updated_at=row.updated_at, updated_by=row.updated_by,
    )


def _endpoint(runtime: WorkloadRuntime | None) -> str | None:
    return runtime.grpc_endpoint if runtime is not None and runtime.gateway_port else None


def session_view(record: service.SessionRecord, runtime: WorkloadRuntime | None) -> SessionView:
    s, live = record.session, record.live
    status, last_activity, idle_since = s.status, s.last_activity_at, s.idle_since
    if live is not None:  # memory is ahead of the database by at most one controller tick
        status = live.status
        if live.last_activity_at is not None and (last_activity is None or live.last_activity_at > last_activity):
            last_activity = live.last_activity_at
        idle_since = (idle_since or live.idle_since) if status == IDLE else None
    message = s.status_message
    if message in READINESS_MESSAGES and status != PENDING:  # the first call came before the database heard of it
        message = None
    connection = ConnectionInfo(proxy_auth_url=None, grpc_endpoint=_endpoint(runtime)) if record.owned else None
    return SessionView(
        id=s.id, endpoint_type=s.endpoint_type, name=s.name, status=status, workload_id=s.compute_instance_id,
        team_id=s.team_id, member_id=s.member_id, service_account_id=s.service_account_id, notebook_id=s.notebook_id,
        termination_reason=s.termination_reason, status_message=message, connection_info=connection,
        last_activity_at=last_activity, idle_since=idle_since, closed_at=s.closed_at, timeout_at=s.timeout_at,
        config=SessionConfigView(idle_timeout_seconds=s.idle_timeout_seconds,
                                 idle_close_delay_seconds=s.idle_close_delay_seconds,
                                 max_duration_seconds=s.max_duration_seconds),
        metadata=dict(s.session_metadata or {}), created_at=s.created_at, updated_at=s.updated_at,
    )


def _member_ref(member: Member, user: User) -> MemberRef:
    return MemberRef(
        id=member.id, organization_id=member.organization_id, user_id=user.id,
        name=member.display_name or user.display_name, email=user.email, preferences={},
        is_enabled=member.status == "active" and user.status == "active", account_type=user.account_type,
        created_at=member.created_at, created_by=member.created_by, updated_at=member.updated_at,
        updated_by=member.updated_by,
    )


def _service_account_ref(account: ServiceAccount) -> ServiceAccountRef:
    return ServiceAccountRef(id=account.id, username=account.name, description=account.description,
                             created_at=account.created_at, created_by=account.created_by,
                             updated_at=account.updated_at, updated_by=account.updated_by)


def _workload_view(row: ComputeInstance, runtime: WorkloadRuntime | None) -> WorkloadView:
    endpoint = _endpoint(runtime)
    endpoints = {"spark_connect": endpoint} if endpoint and row.status in LIVE_INSTANCE_STATES else {}
    return WorkloadView(
        id=row.id, workload_config_id=row.workload_config_id, infra_status=row.status,
        shutdown_policy=row.shutdown_policy, endpoints=endpoints, provisioned_at=row.started_at,
        cleaned_at=row.cleaned_at, last_activity_at=row.last_activity_at, status_message=row.status_message,
        created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at, updated_by=row.updated_by,
    )


# --- sessions ---------------------------------------------------------------------------------


@router.get("/sessions", operation_id="listSessions", response_model=SessionList)
def list_sessions(
    db: Db, principal: CurrentPrincipal, runtime: Runtime, page: Page, team_id: TeamFilter = None,
    endpoint_type: Annotated[Literal["spark_connect"] | None, Query(description="Filter by endpoint type.")] = None,
    status: Annotated[Literal["pending", "active", "idle", "closed", "failed"] | None,
                      Query(description="Filter by status.")] = None,
) -> SessionList:
    """Sessions the caller may see: their own, their managed teams' (team admins), all (org admins)."""
    result = service.list_sessions(db, principal, service.SessionFilter(team_id, endpoint_type, status), page,
                                   runtime)
    items = [SessionItem(id=r.session.id, compute_instance_id=r.session.compute_instance_id,
                         member_id=r.session.member_id, service_account_id=r.session.service_account_id)
             for r in result.records]
    included = SessionIncluded(
        sessions=[session_view(r, runtime) for r in result.records],
        members=[_member_ref(m, u) for m, u in result.members],
        service_accounts=[_service_account_ref(a) for a in result.service_accounts],
        workloads=[_workload_view(i, runtime) for i in result.instances],
        workload_configs=[config_view(c) for c in result.configs],
    )
    return SessionList(total=result.total, items=items, included=included, marker=result.marker)


@router.post("/sessions", operation_id="createSession", status_code=201, response_model=SessionView)
def create_session(body: CreateSessionRequest, db: Db, principal: CurrentPrincipal, settings: AppSettings,
                   runtime: Runtime, ctx: Ctx) -> SessionView:
    """Open a Spark Connect session on a new (or, with allowShared, a reused) Sail instance; it is
    `pending` until the first call through the gateway after the instance is ready."""
    record = service.create_session(db, principal, body, ctx, settings, runtime)
    return session_view(record, runtime)


@router.get("/sessions/{session}", operation_id="describeSession", response_model=SessionView)
def describe_session(session: SessionId, db: Db, principal: CurrentPrincipal, runtime: Runtime) -> SessionView:
    """A session's state and timing; its owner also gets the gRPC endpoint to dial."""
    return session_view(service.describe_session(db, principal, session, runtime), runtime)


@router.delete("/sessions/{session}", operation_id="closeSession", response_model=SessionMessage)
def close_session(session: SessionId, db: Db, principal: CurrentPrincipal, runtime: Runtime,
                  ctx: Ctx) -> dict[str, str]:
    """Close now: the gateway refuses its calls at once and the Sail instance is released shortly after."""
    service.close_session(db, principal, session, ctx, runtime)
    return SESSION_CLOSED


@router.post("/sessions/{session}/token", operation_id="issueSessionToken", response_model=SessionToken)
def issue_session_token(session: SessionId, db: Db, principal: CurrentPrincipal, settings: AppSettings,
                        runtime: Runtime, ctx: Ctx,
                        body: Annotated[IssueTokenRequest | None, Body()] = None) -> SessionToken:
    """A short-lived JWT for the gateway: `x-sailplane-token=` (or PySpark's `token=`) in the Spark Connect URL."""
    token, expires_at = service.issue_token(db, principal, session, body, ctx, settings, runtime)
    return SessionToken(token=token, expires_at=expires_at)


@router.post("/sessions/{session}/relaunch", operation_id="relaunchSession", status_code=201,
             response_model=SessionView)
def relaunch_session(session: SessionId, db: Db, principal: CurrentPrincipal, runtime: Runtime,
                     ctx: Ctx) -> SessionView:
    """A new session with the same configuration as a closed or failed one (which is left unchanged)."""
    return session_view(service.relaunch_session(db, principal, session, ctx, runtime), runtime)


# --- workload configs -------------------------------------------------------------------------


@router.get("/compute-configs", operation_id="listWorkloadConfigs", response_model=WorkloadConfigList)
def list_workload_configs(db: Db, principal: CurrentPrincipal, page: Page,
                          team_id: TeamFilter = None) -> WorkloadConfigList:
    """Named compute profiles of the caller's teams (all of them for organization admins)."""
    rows, marker = configs.list_configs(db, principal, team_id, page)
    return WorkloadConfigList(items=[config_view(r) for r in rows], marker=marker)


@router.post("/compute-configs", operation_id="createWorkloadConfig", status_code=201,
             response_model=WorkloadConfigView)
def create_workload_config(body: CreateWorkloadConfigRequest, db: Db, principal: CurrentPrincipal,
                           settings: AppSettings, ctx: Ctx) -> WorkloadConfigView:
    """Save a team's compute profile for reuse by sessions; type, cluster and team never change."""
    return config_view(configs.create_config(db, principal, body, ctx, settings))


@router.get("/compute-configs/{workloadConfig}", operation_id="describeWorkloadConfig",
            response_model=WorkloadConfigView)
def describe_workload_config(workload_config: WorkloadConfigId, db: Db,
                             principal: CurrentPrincipal) -> WorkloadConfigView:
    """The full profile, for anyone who can see its team."""
    return config_view(configs.get_config(db, principal, workload_config))
