"""The ASGI application: routers, error handlers, and the service endpoints."""

# ruff: noqa: E402 - httpx is loaded without its command line before any import that loads it

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sailplane.httpx_loading import import_httpx_without_cli

import_httpx_without_cli()

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from sailplane.config import Settings, get_settings
from sailplane.console import ConsoleMiddleware
from sailplane.gateway.tokens import SigningKeys
from sailplane.infra.providers.aws import Aws
from sailplane.kit.admission import install_admission_control
from sailplane.kit.db import Database
from sailplane.kit.errors import error_body, install_error_handlers
from sailplane.kit.input import InputGuardMiddleware
from sailplane.kit.openapi import install_openapi
from sailplane.kit.requests import RequestIdMiddleware
from sailplane.migrations.runner import is_current, upgrade_unless_current
from sailplane.notifications.mailer.service import Mailer
from sailplane.notifications.outbox import WAKE_SENDER
from sailplane.telemetry.endpoint import install_metrics_endpoint
from sailplane.telemetry.http import RequestMetricsMiddleware
from sailplane.telemetry.metrics import Metrics
from sailplane.telemetry.state import GatewayCollector, PoolCollector, WorkloadStateCollector
from sailplane.telemetry.tracing import Tracing, start_tracing
from sailplane.workloads.notebooks.presence import NotebookPresence

API_PREFIX = "/api/v1"
log = logging.getLogger("sailplane")


def _routers() -> list[APIRouter]:
    from sailplane.data.router import catalogs_router, queries_router
    from sailplane.iam.auth.router import router as auth_router
    from sailplane.iam.identity.router import auth_router as identity_auth_router
    from sailplane.iam.identity.router import me_router as identity_me_router
    from sailplane.iam.mfa.router import auth_router as mfa_auth_router
    from sailplane.iam.mfa.router import me_router as mfa_me_router
    from sailplane.iam.mfa.router import users_router as mfa_users_router
    from sailplane.iam.sso.router import router as sso_router
    from sailplane.infra.clusters.provisioned_router import router as provisioned_clusters_router
    from sailplane.infra.clusters.router import router as my_clusters_router
    from sailplane.infra.connections.router import router as connections_router
    from sailplane.infra.networks.router import router as networks_router
    from sailplane.infra.operations.router import router as operations_router
    from sailplane.notifications.router import router as notifications_router
    from sailplane.tenancy.accounts.router import me_router, users_router
    from sailplane.tenancy.audit.router import router as audit_router
    from sailplane.tenancy.invites.router import org_router as invites_org_router
    from sailplane.tenancy.invites.router import public_router as invites_public_router
    from sailplane.tenancy.org.router import router as org_router
    from sailplane.tenancy.policies.router import router as policies_router
    from sailplane.tenancy.service_accounts.router import router as service_accounts_router
    from sailplane.tenancy.teams.router import router as teams_router
    from sailplane.workloads.jobs.router import router as jobs_router
    from sailplane.workloads.notebooks.router import router as notebooks_router
    from sailplane.workloads.router import router as workloads_router
    from sailplane.workloads.runs.router import router as runs_router

    return [
        auth_router, me_router, users_router, org_router, teams_router, invites_org_router,
        invites_public_router, policies_router, service_accounts_router, audit_router,
        my_clusters_router, connections_router, networks_router, provisioned_clusters_router, operations_router,
        workloads_router, notebooks_router,
        catalogs_router, queries_router, jobs_router, runs_router, notifications_router,
        mfa_auth_router, mfa_me_router, mfa_users_router,
        identity_auth_router, identity_me_router, sso_router,
    ]


def start_background(app: FastAPI) -> None:
    """Start the operation runner, the compute backend, session controller and Spark Connect gateway, then job
    runs (blocking).

    The lifespan calls it, unless the CLI did so before serving (so that a start-up failure is reported
    as one line instead of through uvicorn's lifespan traceback); the lifespan's end stops them."""
    settings: Settings = app.state.settings
    if app.state.background_started:
        return
    app.state.background_started = True
    if settings.operations_enabled:
        start_operations(app)
    if settings.notifications_enabled:
        start_notifications(app)
    try:
        _start_compute(app)
    except BaseException:
        if app.state.notifications is not None:
            notifications, app.state.notifications = app.state.notifications, None
            notifications.stop()
        if app.state.operations is not None:
            operations, app.state.operations = app.state.operations, None
            operations.stop()
        raise


def _start_compute(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    if not settings.compute_enabled:
        return
    from sailplane.workloads.notebooks.controller import NotebookController
    from sailplane.workloads.runs.runtime import RunRuntime
    from sailplane.workloads.runtime import WorkloadRuntime

    tracing: Tracing | None = app.state.tracing
    runtime = WorkloadRuntime(settings, app.state.background_db, app.state.signing_keys,
                              tracer=tracing.tracer("sailplane.gateway") if tracing is not None else None)
    runtime.start()
    app.state.workloads = runtime
    # Notebooks: their marimo servers and Sail sessions, on this node's compute.
    notebooks = NotebookController(app.state.background_db, runtime, app.state.notebook_presence, settings)
    try:
        notebooks.start()
    except BaseException:
        app.state.workloads = None
        runtime.stop()
        raise
    app.state.notebooks = notebooks
    log.info("Spark Connect gateway: %s (%s)", runtime.grpc_endpoint, "TLS" if runtime.tls else "plaintext")
    # Job runs: the dispatcher (and scheduler) share the compute backends of this node.
    runs = RunRuntime(settings, app.state.background_db, runtime.backends, runtime.node, runtime.sandbox,
                      on_scheduler_lag=app.state.metrics.scheduler_lag.observe,
                      on_lease_missed=lambda reason: app.state.metrics.lease_missed.labels(reason).inc())
    try:
        runs.start()
    except BaseException:
        app.state.workloads = app.state.notebooks = None
        notebooks.stop()
        runtime.stop()
        raise
    app.state.runs = runs


def start_operations(app: FastAPI) -> None:
    """The operation runner (infra/operations), with every kind of operation this server can run. Not part of
    compute: infrastructure operations run on an API-only server too."""
    from sailplane.infra.clusters.operations import DestroyCluster, ProvisionCluster, UpdateCluster
    from sailplane.infra.connections.sync import SyncTemplate
    from sailplane.infra.networks.operations import DestroyNetwork, ProvisionNetwork
    from sailplane.infra.operations.runner import OperationsRuntime
    from sailplane.kit.crypto import Encryptor

    settings: Settings = app.state.settings
    parts = (app.state.background_db, app.state.aws, Encryptor(settings.secret_key))
    kinds = [SyncTemplate(*parts).kind(), ProvisionNetwork(*parts).kind(), DestroyNetwork(*parts).kind(),
             ProvisionCluster(*parts).kind(), UpdateCluster(*parts).kind(), DestroyCluster(*parts).kind()]
    runtime = OperationsRuntime(app.state.background_db, {k.name: k for k in kinds}, node=str(settings.data_dir),
                                lease_seconds=settings.operations_lease_seconds,
                                interval=settings.operations_interval_seconds,
                                max_parallel=settings.operations_max_parallel,
                                on_lease_missed=lambda reason: app.state.metrics.operation_lease_missed.labels(
                                    reason).inc())
    runtime.start()
    app.state.operations = runtime


def start_notifications(app: FastAPI) -> None:
    """The notification sender (notifications/sender.py): sends the deliveries the outbox wrote. Not part of
    compute: an API-only server sends them too."""
    from sailplane.notifications.sender import NotificationRuntime

    runtime = NotificationRuntime(app.state.background_db, app.state.settings, app.state.mailer)
    runtime.start()
    app.state.notifications = runtime
    # A transaction that wrote deliveries (requests' or loops') wakes this sender once it commits (outbox.record).
    for database in (app.state.db, app.state.background_db):
        database.set_session_info(WAKE_SENDER, runtime.notify)


def stop_background(app: FastAPI) -> None:
    """Stop job runs, the notebook controller, then the gateway and session controller (Sail servers of
    sessions and marimo servers of notebooks keep running, for the next start to adopt)."""
    if app.state.runs is not None:
        runs, app.state.runs = app.state.runs, None
        runs.stop()
    if app.state.notebooks is not None:
        notebooks, app.state.notebooks = app.state.notebooks, None
        notebooks.stop()
    if app.state.workloads is not None:
        runtime, app.state.workloads = app.state.workloads, None
        runtime.stop()
    if app.state.operations is not None:
        operations, app.state.operations = app.state.operations, None
        operations.stop()
    if app.state.notifications is not None:
        notifications, app.state.notifications = app.state.notifications, None
        for database in (app.state.db, app.state.background_db):
            database.set_session_info(WAKE_SENDER, None)
        notifications.stop()
    app.state.background_started = False


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade_unless_current(settings.database_url)
        await asyncio.to_thread(start_background, app)  # unless the CLI started it already
        try:
            yield
        finally:
            # Here also when the CLI started them: uvicorn ends a SIGTERM'd process by raising the signal again.
            await asyncio.to_thread(stop_background, app)
            if getattr(app.state, "notebook_proxy", None) is not None:
                await app.state.notebook_proxy.aclose()
            app.state.db.dispose()
            app.state.background_db.dispose()
            if app.state.tracing is not None:
                await asyncio.to_thread(app.state.tracing.shutdown)  # sends the spans still batched

    app = FastAPI(
        title="Sailplane",
        version="0.1.0",
        description="A self-hostable implementation of the LakeSail platform API.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Requests and background loops (session controller, gateway checks, scheduler, dispatcher) draw on
    # separate pools, so neither can starve the other. At most max_concurrent_requests requests are admitted
    # at once, each holding at most one connection at a time: the request pool keeps that many (the
    # overflow covers the few routes outside admission control, such as /readyz's check).
    app.state.db = Database(settings.database_url, pool_size=settings.max_concurrent_requests, max_overflow=8,
                            pool_timeout=10)
    app.state.background_db = Database(settings.database_url, pool_size=8, max_overflow=16)
    app.state.mailer = Mailer(settings)
    app.state.signing_keys = SigningKeys.from_config(settings.gateway_signing_key, settings.data_dir)
    app.state.notebook_presence = NotebookPresence()  # written by the notebook proxy, read by its controller
    app.state.notebook_proxy = None  # workloads.notebooks.proxy.NotebookProxy, made on first use
    app.state.workloads = None
    app.state.notebooks = None
    app.state.runs = None
    app.state.operations = None
    app.state.notifications = None  # notifications.sender.NotificationRuntime
    app.state.aws = Aws(settings)  # every AWS call (infra.providers.aws), against settings.aws_endpoint_url
    app.state.background_started = False
    install_error_handlers(app)
    install_admission_control(app, limit=settings.max_concurrent_requests, max_wait=settings.request_queue_seconds,
                              max_queue=settings.request_queue_limit)
    app.add_middleware(ConsoleMiddleware, router=app.router, directory=settings.console_dir,  # GET pages at /
                       gateway_tls=settings.gateway_tls_cert is not None)
    from sailplane.workloads.notebooks.proxy import NotebookLane
    from sailplane.workloads.notebooks.proxy import router as notebook_proxy_router

    app.add_middleware(NotebookLane)  # notebook pages' traffic: to marimo, not through the API's layers below
    # Outside admission control: an oversized or NUL-bearing request is refused without waiting its turn.
    app.add_middleware(InputGuardMiddleware, max_body_bytes=settings.max_request_bytes)
    # Counts every answer, refusals of the two layers inside included; inside the request ID, for the log line.
    app.state.metrics = Metrics()
    app.state.metrics.add(WorkloadStateCollector(app.state.db))
    app.state.metrics.add(PoolCollector({"requests": app.state.db, "background": app.state.background_db}))
    app.state.metrics.add(GatewayCollector(
        lambda: app.state.workloads.gateway.traffic if app.state.workloads is not None else None))
    if settings.metrics_enabled or settings.log_format == "json":
        app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics, count=settings.metrics_enabled,
                           log_requests=settings.log_format == "json")
    app.add_middleware(RequestIdMiddleware)  # outermost: every refusal carries the request ID too
    # Traces (off unless an OTLP endpoint is configured): requests, database statements, gateway calls.
    app.state.tracing = start_tracing(settings)
    if app.state.tracing is not None:
        app.state.tracing.instrument_app(app)
        for database in (app.state.db, app.state.background_db):
            app.state.tracing.instrument_engine(database.engine)
    # /notebooks/{notebook}/...: browser traffic, outside the API (its HTTP relaying is NotebookLane's, before the
    # router; the open URL, WebSockets and the slashless redirect are routes). First: routes are tried in order.
    app.include_router(notebook_proxy_router)
    for router in _routers():
        app.include_router(router, prefix=API_PREFIX)
    _service_endpoints(app)
    install_metrics_endpoint(app, app.state.metrics, settings.metrics_token)
    from sailplane.iam.auth.deps import optional_identity

    install_openapi(app, optional_identity)
    return app


def _service_endpoints(app: FastAPI) -> None:
    @app.get("/healthz", operation_id="health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/.well-known/jwks.json", operation_id="jwks", tags=["service"])
    def jwks(request: Request) -> dict[str, list[dict[str, str]]]:
        """Public keys of the session proxy tokens, so anyone can verify a token without our secrets."""
        keys: SigningKeys = request.app.state.signing_keys
        return keys.jwks()

    @app.get("/readyz", operation_id="ready", tags=["service"])
    def ready(request: Request) -> JSONResponse:
        """Readiness: the database answers and its schema is at the latest migration."""
        db: Database = request.app.state.db
        try:
            current = is_current(db.engine)
        except Exception:  # noqa: BLE001 - any database failure means "not ready"
            log.warning("readiness check: database unreachable")
            body = error_body(503, "database_unreachable", "The database is unreachable.", request, retryable=True)
            return JSONResponse(body, status_code=503)
        if not current:
            body = error_body(503, "migrations_pending", "Database migrations are not applied.", request,
                              retryable=True)
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready"})
