"""The `sailplane` command: serve the API, apply migrations, bootstrap an owner."""

from __future__ import annotations

import functools
import logging
import os
import socket
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sailplane.client.cli import Group
from sailplane.client.cli import register as register_user_commands

if TYPE_CHECKING:  # the server's modules load only when a server command runs: user commands start fast
    from rich.console import Console

    from sailplane.config import Settings
    from sailplane.startup import StartupError

app = typer.Typer(cls=Group, help="Sailplane: a self-hostable control plane for Sail.", no_args_is_help=True,
                  add_completion=True)
admin = typer.Typer(help="Administrative tasks for automation.", no_args_is_help=True)
app.add_typer(admin, name="admin")
register_user_commands(app)


@functools.cache
def _console() -> Console:
    """rich's console, loaded by the server commands only (a user command prints through its own)."""
    from rich.console import Console

    return Console()


GRACEFUL_SHUTDOWN_SECONDS = 10
# An idle keep-alive connection is kept longer than clients keep theirs (httpx, our SDK's: 5 s; load balancers: 60 s).
# With uvicorn's 5 s the server closed a connection just as a client reused it: a POST then failed with
# "connection reset", which no client retries.
KEEP_ALIVE_SECONDS = 75


def _debug(log_level: str = "") -> bool:
    return log_level.lower() == "debug" or os.environ.get("SAILPLANE_DEBUG", "").lower() in ("1", "true", "yes")


def _fail(exc: StartupError, debug: bool) -> NoReturn:
    """One line on stderr saying what keeps the server from starting (the traceback only when debugging)."""
    if debug:
        traceback.print_exception(exc)
    hint = "" if debug else " (details: --log-level debug or SAILPLANE_DEBUG=1)"
    print(f"sailplane: error: {exc}{hint}", file=sys.stderr, flush=True)
    raise typer.Exit(1)


def _load_settings() -> Settings:
    """The settings, once the data directory and the database URL are known to be usable."""
    from sailplane.config import get_settings
    from sailplane.startup import check_data_dir, check_database_url, step

    check_data_dir(Path(os.environ.get("SAILPLANE_DATA_DIR", "data")).resolve())
    with step("the configuration is invalid"):
        settings = get_settings()
    check_database_url(settings.database_url)
    return settings


def _migrate(settings: Settings) -> None:
    from sailplane.migrations.runner import upgrade
    from sailplane.startup import safe_url, step

    with step(f"the database {safe_url(settings.database_url)} cannot be used"):
        upgrade(settings.database_url)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port for the API.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level ('debug' also prints start-up tracebacks).")
                         ] = "info",
    log_format: Annotated[str, typer.Option(
        help="'text', or 'json': one JSON object per line with the request ID, and a line per request "
             "(default: SAILPLANE_LOG_FORMAT, else text).")] = "",
    gateway_tls: Annotated[bool, typer.Option(
        help="Serve the Spark Connect gateway over TLS; without a configured certificate "
             "(SAILPLANE_GATEWAY_TLS_CERT/KEY) a self-signed one is made in the data directory.")] = True,
) -> None:
    """Apply migrations and run the API server and the Spark Connect gateway (SQLite in the data
    directory unless SAILPLANE_DATABASE_URL points elsewhere)."""
    import uvicorn

    from sailplane.app import create_app, start_background, stop_background
    from sailplane.startup import StartupError, step
    from sailplane.telemetry.logs import configure as configure_logs

    if log_format:
        os.environ["SAILPLANE_LOG_FORMAT"] = log_format
    log_format = os.environ.get("SAILPLANE_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in ("text", "json"):
        _fail(StartupError(f"--log-format must be 'text' or 'json', not {log_format!r}"), False)
    configure_logs(log_level, log_format)
    debug = _debug(log_level)
    os.environ.setdefault("SAILPLANE_PUBLIC_URL", f"http://{host}:{port}")
    try:
        settings = _load_settings()
        _migrate(settings)
        with step("the gateway's TLS certificate cannot be set up"):
            settings = _gateway_tls(settings, gateway_tls)
        with step("the server cannot be set up"):
            server = create_app(settings, migrate=False)
        # Compute, the gateway and job runs start before uvicorn, so that what keeps them from starting
        # (a taken gateway port, a host without bubblewrap) is one line rather than a lifespan traceback.
        with step("compute cannot start"):
            start_background(server)
    except StartupError as exc:
        _fail(exc, debug)
    try:
        base = f"http://{host}:{port}"
        _say(f"[bold]Sailplane[/bold] data directory: {settings.data_dir}")
        _say(f"Console:   {base}/")
        _say(f"API docs:  {base}/api/v1/docs")
        _say(f"OpenAPI:   {base}/api/v1/openapi.json")
        _say(
            "Sign up:   curl -s -X POST "
            f"{base}/api/v1/auth/signup -H 'Content-Type: application/json' "
            "-d '{\"email\":\"you@example.com\",\"password\":\"a-long-password\","
            "\"displayName\":\"You\",\"organizationName\":\"Acme\"}'"
        )
        if not settings.smtp_host:
            _say(f"Mail:      no SMTP configured; messages are written to {settings.data_dir / 'outbox'}")
        runtime = server.state.workloads
        if runtime is not None and runtime.gateway_port is not None:
            settings = replace(settings, gateway_port=runtime.gateway_port)
        _print_gateway(settings)
        # On SIGTERM, requests in progress (and those waiting for admission, at most request_queue_seconds)
        # get GRACEFUL_SHUTDOWN_SECONDS to finish before they are cancelled and the server stops.
        # JSON: our own request line (telemetry.http) replaces uvicorn's access log, and uvicorn keeps our handlers.
        json_logs = {"log_config": None, "access_log": False} if log_format == "json" else {}
        uvicorn.run(server, host=host, port=port, log_level=log_level, proxy_headers=True,
                    forwarded_allow_ips="127.0.0.1", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                    timeout_keep_alive=KEEP_ALIVE_SECONDS,
                    **json_logs)  # type: ignore[arg-type]
    finally:
        stop_background(server)
        server.state.db.dispose()
        server.state.background_db.dispose()


def _gateway_tls(settings: Settings, enabled: bool) -> Settings:
    """The configured certificate, or a self-signed one kept in the data directory (reused across
    restarts so clients keep trusting it)."""
    if not enabled:
        return replace(settings, gateway_tls_cert=None, gateway_tls_key=None)
    if settings.gateway_tls_cert and settings.gateway_tls_key:
        return settings
    from sailplane.gateway.spark_connect import generate_self_signed_cert

    tls_dir = settings.data_dir / "tls"
    cert, key = tls_dir / "gateway-cert.pem", tls_dir / "gateway-key.pem"
    if not (cert.exists() and key.exists()):
        names = list(dict.fromkeys([settings.gateway_public_host, "localhost", "127.0.0.1", socket.gethostname()]))
        cert, key = generate_self_signed_cert(tls_dir, names)
    return replace(settings, gateway_tls_cert=cert, gateway_tls_key=key)


def _say(text: str) -> None:
    """A line of the start-up banner: printed for a person, or a log line when logs are JSON (nothing else on
    the output, so a log collector reads every line)."""
    if os.environ.get("SAILPLANE_LOG_FORMAT") == "json":
        from rich.text import Text

        logging.getLogger("sailplane").info(Text.from_markup(text).plain)
    else:
        _console().print(text, soft_wrap=True)


def _print_gateway(settings: Settings) -> None:
    if not settings.compute_enabled:
        return
    endpoint = f"sc://{settings.gateway_public_host}:{settings.gateway_port}"
    if not settings.gateway_tls_cert:
        _say(f"Gateway:   {endpoint} (plaintext; connect with {endpoint}/;token=<session token>)")
        return
    _say(f"Gateway:   {endpoint} (TLS, certificate {settings.gateway_tls_cert})")
    if settings.gateway_tls_cert.parent == settings.data_dir / "tls":
        _say(
            "Trust it:  the certificate is self-signed; for PySpark set "
            f"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={settings.gateway_tls_cert} in the client's environment"
        )
    _say(f"Connect:   SparkSession.builder.remote(\"{endpoint}/;use_ssl=true;token=<session token>\")")


@app.command()
def migrate() -> None:
    """Apply every pending database migration and exit."""
    from sailplane.startup import StartupError

    try:
        _migrate(_load_settings())
    except StartupError as exc:
        _fail(exc, _debug())
    _console().print("Database is at the latest migration.")


@admin.command("create-owner")
def create_owner(
    email: Annotated[str, typer.Option(help="The owner's email address.")],
    organization: Annotated[str, typer.Option(help="Name of the organization to create.")],
    display_name: Annotated[str, typer.Option(help="The owner's display name.")] = "Owner",
    password_env: Annotated[
        str, typer.Option(help="Name of the environment variable holding the password (never a flag).")
    ] = "SAILPLANE_OWNER_PASSWORD",
) -> None:
    """Create an organization and its Owner without prompting (for automation). Idempotent on
    the email: an existing account is left as it is and the command exits 0."""
    from sqlalchemy import select

    from sailplane.iam.auth.models import User
    from sailplane.iam.auth.passwords import check_password_rules, hash_password
    from sailplane.kit.db import Database
    from sailplane.kit.errors import ApiError
    from sailplane.startup import StartupError
    from sailplane.tenancy.org.service import create_organization

    password = os.environ.get(password_env)
    if not password:
        _console().print(f"[red]Set the password in the {password_env} environment variable.[/red]")
        raise typer.Exit(2)
    try:
        check_password_rules(password)
    except ApiError as exc:
        _console().print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    try:
        settings = _load_settings()
        _migrate(settings)
    except StartupError as exc:
        _fail(exc, _debug())
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            normalized = email.strip().lower()
            existing = session.scalar(select(User).where(User.email == normalized))
            if existing is not None:
                _console().print(f"An account for {normalized} already exists; nothing changed.")
                return
            user = User(email=normalized, display_name=display_name, password_hash=hash_password(password))
            session.add(user)
            session.flush()
            org, member = create_organization(session, organization, user)
            user.default_organization_id = org.id
            session.commit()
            _console().print(f"Created organization {org.id} with Owner {normalized} (member {member.id}).")
    finally:
        db.dispose()


if __name__ == "__main__":
    app()
