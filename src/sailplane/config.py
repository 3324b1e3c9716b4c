"""Runtime configuration, read once from SAILPLANE_* environment variables."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _positive_int(name: str, default: int) -> int:
    value = _env_int(name, default)
    if value < 1:
        raise ValueError(f"{name} must be a positive number of bytes")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_path(name: str) -> Path | None:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else None


def parse_nameservers(raw: str) -> tuple[tuple[str, int], ...]:
    """`127.0.0.1:5353,10.0.0.2,[::1]:53` as (address, port) pairs; port 53 when omitted. Addresses only:
    the resolver that checks domain ownership must not itself depend on a name lookup."""
    found: list[tuple[str, int]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        host, port = item, 53
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest:
                port = int(rest.removeprefix(":"))
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            port = int(port_text)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"SAILPLANE_DNS_NAMESERVERS: {item!r} is not an IP address[:port]") from None
        if not 0 < port < 65536:
            raise ValueError(f"SAILPLANE_DNS_NAMESERVERS: {item!r} has no valid port")
        found.append((host, port))
    return tuple(found)


DEFAULT_GATEWAY_PORT = 50051


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str
    public_url: str = "http://127.0.0.1:8000"
    login_ttl_seconds: int = 24 * 3600
    invite_ttl_seconds: int = 7 * 24 * 3600
    login_max_failures: int = 5
    login_failure_window_seconds: int = 900
    login_lockout_seconds: int = 300
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "Sailplane <no-reply@sailplane.local>"
    # Spark Connect gateway. Port 0 lets the OS choose (the bound port is then on the runtime);
    # with gateway_port_fallback a taken port falls back to an OS-chosen one instead of failing.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 0
    gateway_port_fallback: bool = False
    gateway_public_host: str = "localhost"
    gateway_tls_cert: Path | None = None
    gateway_tls_key: Path | None = None
    gateway_signing_key: Path | None = None
    # The web console's built files (`npm run build` in console/); None: this checkout's console/dist.
    console_dir: Path | None = None
    # How long the gateway trusts its last answer to "may this token's holder still use its session?"
    # (login or API key still valid, still a member with access): removed access is refused within this.
    gateway_access_cache_seconds: float = 5.0
    # How long the notebook proxy trusts its last answer to "may this cookie's holder still open the notebook?"
    # (still sees it, the notebook still running): removed access is refused within this.
    notebook_access_cache_seconds: float = 5.0
    # A stopping gateway takes no new calls (clients send them to the next one) and gives running ones
    # this long to finish: Sail drops a call whose connection closes, so a longer one fails the client.
    gateway_drain_seconds: float = 30.0
    # Sessions: proxy token lifetime and the lifecycle defaults/limits a request may ask for.
    session_token_default_seconds: int = 28800
    session_token_max_seconds: int = 86400
    session_idle_timeout_seconds: int = 1800
    session_idle_close_delay_seconds: int = 1800
    session_max_duration_seconds: int = 28800
    session_max_duration_limit_seconds: int = 7 * 24 * 3600
    # The session controller's loop period (activity flush, timeouts, instance health).
    controller_interval_seconds: float = 5.0
    compute_start_timeout_seconds: float = 120.0
    local_max_workers: int = 8
    # Where local catalogs may keep their warehouses (None: `<data_dir>/warehouses`). A catalog's
    # `warehouseDir` must lie under it; a workload sees only its own catalogs' directories.
    storage_root: Path | None = None
    # Workload isolation on the local backend: "sandbox" (bubblewrap; the default) or "off" (an
    # explicit opt-out for hosts where namespaces are unavailable; user code then runs unconfined).
    workload_sandbox: str = "sandbox"
    # The unprivileged system user workloads run as when the server runs as root (None: no switch).
    workload_user: str | None = "sailplane-workload"
    # Local directories a job's `sourceConfig.url` may name (a local git repository under one of
    # them is shown read-only to the checkout; other local paths are refused).
    source_roots: tuple[Path, ...] = ()
    # The DNS servers that check domain ownership TXT records (empty: the system resolver), and how long
    # one check may take.
    dns_nameservers: tuple[tuple[str, int], ...] = ()
    dns_timeout_seconds: float = 5.0
    # Where the Python environments of the PySpark lines live (None: `spark-envs/` in our own
    # virtual environment; see sailplane.compute.environments).
    spark_envs_dir: Path | None = None
    # Notebooks (marimo): where the notebook environment lives (None: next to the Spark lines'), the
    # notebook controller's period, how long a start may take, how long no browser may be attached
    # before a running notebook is `detached`, and how long without activity before it is `idle`
    # (it is stopped after the notebook's own detachedTimeoutSeconds / idleTimeoutSeconds).
    notebook_envs_dir: Path | None = None
    notebook_controller_interval_seconds: float = 2.0
    notebook_start_timeout_seconds: float = 120.0
    notebook_detach_grace_seconds: float = 60.0
    notebook_idle_after_seconds: float = 300.0
    # Start the compute backend, session controller and gateway with the app (off: API only).
    compute_enabled: bool = True
    # The largest request body accepted (413 beyond; counted while it streams in).
    max_request_bytes: int = 2 * 1024 * 1024
    # Admission control (kit/admission.py): requests worked on at once (also the request connection pool's
    # size), how long others may wait in line before a 503 with Retry-After, and how many may wait.
    max_concurrent_requests: int = 16
    request_queue_seconds: float = 5.0
    request_queue_limit: int = 1000
    # Cloud infrastructure (infra/): the AWS endpoint boto3 talks to (None: real AWS; tests: the moto server),
    # the region of our own STS calls, and the principal customers' connection roles trust (the IAM ARN this
    # server runs as; None: asked of STS GetCallerIdentity with our default credentials, once).
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    aws_principal_arn: str | None = None
    # Operations (infra/operations): the runner's period, and how long a lease on one lasts unrenewed (a
    # killed server's operations are resumed by another, or its next start, once it lapses).
    operations_enabled: bool = True
    operations_interval_seconds: float = 1.0
    operations_lease_seconds: float = 30.0
    operations_max_parallel: int = 8  # operations one server drives at once (the rest wait their turn)
    # Operators: the bearer token /metrics asks for (None: loopback clients only, no token), and the log format
    # ("text", or "json": one object per line with the request ID, plus a line per request).
    metrics_token: str | None = None
    log_format: str = "text"
    # Off (SAILPLANE_METRICS_ENABLED=0): requests are not counted or timed (RequestMetricsMiddleware skipped), for
    # the metrics-on/off benchmark and operators who scrape nothing; /metrics still serves the other collectors.
    metrics_enabled: bool = True
    # OpenTelemetry traces (telemetry/tracing.py): the OTLP/HTTP traces URL spans are sent to (None: tracing off,
    # nothing of the SDK is loaded), and the service name they carry.
    otlp_traces_endpoint: str | None = None
    otel_service_name: str = "sailplane"
    # Notifications (notifications/): the delivery sender's period and lease, the retry backoff's first step,
    # how long a delivery is retried before it is given up, one attempt's timeout, whether webhooks may target
    # loopback (tests only; private addresses never), and the services' base URLs (tests: loopback receivers).
    notifications_enabled: bool = True
    notifications_interval_seconds: float = 1.0
    notifications_lease_seconds: float = 30.0
    notifications_retry_seconds: float = 2.0
    notifications_give_up_seconds: float = 86400.0
    notifications_timeout_seconds: float = 10.0
    notifications_allow_loopback: bool = False
    slack_webhook_base: str = "https://hooks.slack.com/services/"
    pagerduty_events_url: str = "https://events.pagerduty.com"
    rootly_api_url: str = "https://api.rootly.com"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def warehouse_root(self) -> Path:
        """The directory every local catalog's warehouse must lie under."""
        return (self.storage_root or self.data_dir / "warehouses").resolve()


def _load_secret_key(data_dir: Path) -> str:
    """Keep a stable key in the data directory so encrypted columns survive restarts."""
    explicit = os.environ.get("SAILPLANE_SECRET_KEY")
    if explicit:
        return explicit
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _otlp_traces_endpoint() -> str | None:
    """The OTLP/HTTP traces URL, from OpenTelemetry's own variables or SAILPLANE_OTLP_ENDPOINT: a collector's base
    URL (http://collector:4318) gets /v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT does."""
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if traces:
        return traces
    base = os.environ.get("SAILPLANE_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return None
    return base if base.rstrip("/").endswith("/v1/traces") else f"{base.rstrip('/')}/v1/traces"


def _log_format(raw: str) -> str:
    value = raw.strip().lower() or "text"
    if value not in ("text", "json"):
        raise ValueError(f"SAILPLANE_LOG_FORMAT must be 'text' or 'json', not {raw!r}")
    return value


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("SAILPLANE_DATA_DIR", "data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("SAILPLANE_DATABASE_URL") or f"sqlite:///{data_dir / 'sailplane.db'}"
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=_load_secret_key(data_dir),
        public_url=os.environ.get("SAILPLANE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        login_ttl_seconds=_env_int("SAILPLANE_LOGIN_TTL_SECONDS", 24 * 3600),
        invite_ttl_seconds=_env_int("SAILPLANE_INVITE_TTL_SECONDS", 7 * 24 * 3600),
        login_max_failures=_env_int("SAILPLANE_LOGIN_MAX_FAILURES", 5),
        login_failure_window_seconds=_env_int("SAILPLANE_LOGIN_FAILURE_WINDOW_SECONDS", 900),
        login_lockout_seconds=_env_int("SAILPLANE_LOGIN_LOCKOUT_SECONDS", 300),
        smtp_host=os.environ.get("SAILPLANE_SMTP_HOST") or None,
        smtp_port=_env_int("SAILPLANE_SMTP_PORT", 25),
        smtp_username=os.environ.get("SAILPLANE_SMTP_USERNAME") or None,
        smtp_password=os.environ.get("SAILPLANE_SMTP_PASSWORD") or None,
        smtp_starttls=os.environ.get("SAILPLANE_SMTP_STARTTLS", "").lower() in {"1", "true", "yes"},
        mail_from=os.environ.get("SAILPLANE_MAIL_FROM", "Sailplane <no-reply@sailplane.local>"),
        gateway_host=os.environ.get("SAILPLANE_GATEWAY_HOST", "127.0.0.1"),
        gateway_port=_env_int("SAILPLANE_GATEWAY_PORT", DEFAULT_GATEWAY_PORT),
        gateway_port_fallback=not os.environ.get("SAILPLANE_GATEWAY_PORT"),
        gateway_public_host=os.environ.get("SAILPLANE_GATEWAY_PUBLIC_HOST", "localhost"),
        gateway_tls_cert=_env_path("SAILPLANE_GATEWAY_TLS_CERT"),
        gateway_tls_key=_env_path("SAILPLANE_GATEWAY_TLS_KEY"),
        gateway_signing_key=_env_path("SAILPLANE_GATEWAY_SIGNING_KEY"),
        console_dir=_env_path("SAILPLANE_CONSOLE_DIR"),
        gateway_access_cache_seconds=_env_float("SAILPLANE_GATEWAY_ACCESS_CACHE_SECONDS", 5.0),
        notebook_access_cache_seconds=_env_float("SAILPLANE_NOTEBOOK_ACCESS_CACHE_SECONDS", 5.0),
        gateway_drain_seconds=_env_float("SAILPLANE_GATEWAY_DRAIN_SECONDS", 30.0),
        session_token_default_seconds=_env_int("SAILPLANE_SESSION_TOKEN_DEFAULT_SECONDS", 28800),
        session_token_max_seconds=_env_int("SAILPLANE_SESSION_TOKEN_MAX_SECONDS", 86400),
        session_idle_timeout_seconds=_env_int("SAILPLANE_SESSION_IDLE_TIMEOUT_SECONDS", 1800),
        session_idle_close_delay_seconds=_env_int("SAILPLANE_SESSION_IDLE_CLOSE_DELAY_SECONDS", 1800),
        session_max_duration_seconds=_env_int("SAILPLANE_SESSION_MAX_DURATION_SECONDS", 28800),
        session_max_duration_limit_seconds=_env_int("SAILPLANE_SESSION_MAX_DURATION_LIMIT_SECONDS", 7 * 24 * 3600),
        controller_interval_seconds=_env_float("SAILPLANE_CONTROLLER_INTERVAL_SECONDS", 5.0),
        compute_start_timeout_seconds=_env_float("SAILPLANE_COMPUTE_START_TIMEOUT_SECONDS", 120.0),
        local_max_workers=_env_int("SAILPLANE_LOCAL_MAX_WORKERS", 8),
        storage_root=_env_path("SAILPLANE_STORAGE_ROOT"),
        spark_envs_dir=_env_path("SAILPLANE_SPARK_ENVS_DIR"),
        notebook_envs_dir=_env_path("SAILPLANE_NOTEBOOK_ENVS_DIR"),
        notebook_controller_interval_seconds=_env_float("SAILPLANE_NOTEBOOK_CONTROLLER_INTERVAL_SECONDS", 2.0),
        notebook_start_timeout_seconds=_env_float("SAILPLANE_NOTEBOOK_START_TIMEOUT_SECONDS", 120.0),
        notebook_detach_grace_seconds=_env_float("SAILPLANE_NOTEBOOK_DETACH_GRACE_SECONDS", 60.0),
        notebook_idle_after_seconds=_env_float("SAILPLANE_NOTEBOOK_IDLE_AFTER_SECONDS", 300.0),
        workload_sandbox=os.environ.get("SAILPLANE_WORKLOAD_SANDBOX", "sandbox").strip().lower() or "sandbox",
        workload_user=os.environ.get("SAILPLANE_WORKLOAD_USER", "sailplane-workload").strip() or None,
        source_roots=tuple(Path(p).expanduser().resolve()
                           for p in os.environ.get("SAILPLANE_SOURCE_ROOTS", "").split(os.pathsep) if p.strip()),
        dns_nameservers=parse_nameservers(os.environ.get("SAILPLANE_DNS_NAMESERVERS", "")),
        dns_timeout_seconds=_env_float("SAILPLANE_DNS_TIMEOUT_SECONDS", 5.0),
        max_request_bytes=_positive_int("SAILPLANE_MAX_REQUEST_BYTES", 2 * 1024 * 1024),
        max_concurrent_requests=_positive_int("SAILPLANE_MAX_CONCURRENT_REQUESTS", 16),
        request_queue_seconds=_env_float("SAILPLANE_REQUEST_QUEUE_SECONDS", 5.0),
        request_queue_limit=_env_int("SAILPLANE_REQUEST_QUEUE_LIMIT", 1000),
        aws_endpoint_url=os.environ.get("SAILPLANE_AWS_ENDPOINT_URL") or None,
        aws_region=os.environ.get("SAILPLANE_AWS_REGION") or "us-east-1",
        aws_principal_arn=os.environ.get("SAILPLANE_AWS_PRINCIPAL_ARN") or None,
        operations_enabled=os.environ.get("SAILPLANE_OPERATIONS_ENABLED", "1").lower() not in {"0", "false", "no"},
        operations_interval_seconds=_env_float("SAILPLANE_OPERATIONS_INTERVAL_SECONDS", 1.0),
        operations_lease_seconds=_env_float("SAILPLANE_OPERATIONS_LEASE_SECONDS", 30.0),
        operations_max_parallel=max(1, _env_int("SAILPLANE_OPERATIONS_MAX_PARALLEL", 8)),
        metrics_token=os.environ.get("SAILPLANE_METRICS_TOKEN") or None,
        log_format=_log_format(os.environ.get("SAILPLANE_LOG_FORMAT", "text")),
        metrics_enabled=os.environ.get("SAILPLANE_METRICS_ENABLED", "1").lower() not in {"0", "false", "no"},
        otlp_traces_endpoint=_otlp_traces_endpoint(),
        otel_service_name=os.environ.get("OTEL_SERVICE_NAME") or "sailplane",
        notifications_enabled=os.environ.get("SAILPLANE_NOTIFICATIONS_ENABLED", "1").lower()
        not in {"0", "false", "no"},
        notifications_interval_seconds=_env_float("SAILPLANE_NOTIFICATIONS_INTERVAL_SECONDS", 1.0),
        notifications_lease_seconds=_env_float("SAILPLANE_NOTIFICATIONS_LEASE_SECONDS", 30.0),
        notifications_retry_seconds=_env_float("SAILPLANE_NOTIFICATIONS_RETRY_SECONDS", 2.0),
        notifications_give_up_seconds=_env_float("SAILPLANE_NOTIFICATIONS_GIVE_UP_SECONDS", 86400.0),
        notifications_timeout_seconds=_env_float("SAILPLANE_NOTIFICATIONS_TIMEOUT_SECONDS", 10.0),
        notifications_allow_loopback=os.environ.get("SAILPLANE_NOTIFICATIONS_ALLOW_LOOPBACK", "0").lower()
        in {"1", "true", "yes"},
        slack_webhook_base=os.environ.get("SAILPLANE_SLACK_WEBHOOK_BASE") or "https://hooks.slack.com/services/",
        pagerduty_events_url=os.environ.get("SAILPLANE_PAGERDUTY_EVENTS_URL") or "https://events.pagerduty.com",
        rootly_api_url=os.environ.get("SAILPLANE_ROOTLY_API_URL") or "https://api.rootly.com",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
