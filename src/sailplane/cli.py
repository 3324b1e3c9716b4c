"""The `sailplane` command: serve the API, apply migrations, bootstrap an owner."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from typing import Annotated

import typer
from rich.console import Console

from sailplane.config import Settings, get_settings

app = typer.Typer(help="Sailplane: a self-hostable control plane for Sail.", no_args_is_help=True,
                  add_completion=False)
admin = typer.Typer(help="Administrative tasks for automation.", no_args_is_help=True)
app.add_typer(admin, name="admin")
console = Console()
GRACEFUL_SHUTDOWN_SECONDS = 10


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port for the API.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    gateway_tls: Annotated[bool, typer.Option(
        help="Serve the Spark Connect gateway over TLS; without a configured certificate "
             "(SAILPLANE_GATEWAY_TLS_CERT/KEY) a self-signed one is made in the data directory.")] = True,
) -> None:
    """Apply migrations and run the API server and the Spark Connect gateway (SQLite in the data
    directory unless SAILPLANE_DATABASE_URL points elsewhere)."""
    import uvicorn

    from sailplane.app import create_app
    from sailplane.migrations.runner import upgrade

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("SAILPLANE_PUBLIC_URL", f"http://{host}:{port}")
    settings = get_settings()
    upgrade(settings.database_url)
    settings = _gateway_tls(settings, gateway_tls)
    base = f"http://{host}:{port}"
    console.print(f"[bold]Sailplane[/bold] data directory: {settings.data_dir}")
    console.print(f"API docs:  {base}/api/v1/docs")
    console.print(f"OpenAPI:   {base}/api/v1/openapi.json")
    console.print(
        "Sign up:   curl -s -X POST "
        f"{base}/api/v1/auth/signup -H 'Content-Type: application/json' "
        "-d '{\"email\":\"you@example.com\",\"password\":\"a-long-password\","
        "\"displayName\":\"You\",\"organizationName\":\"Acme\"}'",
        soft_wrap=True,
    )
    if not settings.smtp_host:
        console.print(f"Mail:      no SMTP configured; messages are written to {settings.data_dir / 'outbox'}")
    _print_gateway(settings)
    # On SIGTERM, requests in progress (and those waiting for admission, at most request_queue_seconds) get
    # GRACEFUL_SHUTDOWN_SECONDS to finish before they are cancelled and the server stops.
    uvicorn.run(create_app(settings, migrate=False), host=host, port=port, log_level=log_level,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)


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


def _print_gateway(settings: Settings) -> None:
    if not settings.compute_enabled:
        return
    endpoint = f"sc://{settings.gateway_public_host}:{settings.gateway_port}"
    if not settings.gateway_tls_cert:
        console.print(f"Gateway:   {endpoint} (plaintext; connect with {endpoint}/;token=<session token>)",
                      soft_wrap=True)
        return
    console.print(f"Gateway:   {endpoint} (TLS, certificate {settings.gateway_tls_cert})", soft_wrap=True)
    if settings.gateway_tls_cert.parent == settings.data_dir / "tls":
        console.print(
            "Trust it:  the certificate is self-signed; for PySpark set "
            f"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={settings.gateway_tls_cert} in the client's environment",
            soft_wrap=True,
        )
    console.print(f"Connect:   SparkSession.builder.remote(\"{endpoint}/;use_ssl=true;token=<session token>\")",
                  soft_wrap=True)


@app.command()
def migrate() -> None:
    """Apply every pending database migration and exit."""
    from sailplane.migrations.runner import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    console.print("Database is at the latest migration.")


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

    from sailplane.auth.models import User
    from sailplane.auth.passwords import check_password_rules, hash_password
    from sailplane.kit.db import Database
    from sailplane.kit.errors import ApiError
    from sailplane.migrations.runner import upgrade
    from sailplane.org.service import create_organization

    password = os.environ.get(password_env)
    if not password:
        console.print(f"[red]Set the password in the {password_env} environment variable.[/red]")
        raise typer.Exit(2)
    try:
        check_password_rules(password)
    except ApiError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    settings = get_settings()
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            normalized = email.strip().lower()
            existing = session.scalar(select(User).where(User.email == normalized))
            if existing is not None:
                console.print(f"An account for {normalized} already exists; nothing changed.")
                return
            user = User(email=normalized, display_name=display_name, password_hash=hash_password(password))
            session.add(user)
            session.flush()
            org, member = create_organization(session, organization, user)
            user.default_organization_id = org.id
            session.commit()
            console.print(f"Created organization {org.id} with Owner {normalized} (member {member.id}).")
    finally:
        db.dispose()


if __name__ == "__main__":
    app()
