"""What the sync and async clients share: building a request from an operationId, reading an answer (the error
shape becomes a typed exception), when to retry, and how a list continues. No I/O here, so both clients behave
the same and neither can drift from the snapshot of the OpenAPI document (`spec.py`)."""

from __future__ import annotations

import email.utils
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from sailplane.client.errors import ApiError, error_class
from sailplane.client.spec import Operation, operation

API_PREFIX = "/api/v1"
ORG_HEADER = "LakeSail-Organization-Id"
RETRY_STATUSES = (429, 503)
# Operations whose answer is a login: their token becomes the client's.
_SIGN_IN = frozenset({"login", "completeMfaLogin", "verifyLoginCode", "signup", "exchangeSsoCode"})


@dataclass(frozen=True)
class Request:
    operation: Operation
    method: str
    url: str
    params: dict[str, Any]
    json: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class LogChunk:
    """A piece of a run's driver output from `offset`, the offset to ask from next, and the run's status."""

    text: str
    offset: int
    status: str

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "timeout", "cancelled")


@dataclass
class Core:
    base_url: str
    token: str | None = None
    organization_id: str | None = None
    max_retries: int = 3
    max_retry_wait: float = 30.0
    user_agent: str = "sailplane-client"
    extra_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = self.base_url.rstrip("/")
        self.base_url = base[: -len(API_PREFIX)] if base.endswith(API_PREFIX) else base

    def build(self, operation_id: str, path_params: dict[str, str] | None = None, body: Any = None,
              query: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Request:
        op = operation(operation_id)
        values = dict(path_params or {})
        missing = [name for name in op.path_params if not values.get(name)]
        if missing or set(values) - set(op.path_params):
            raise ValueError(f"{operation_id} takes path parameters {list(op.path_params)}, got {sorted(values)}")
        path = op.path
        for name in op.path_params:
            path = path.replace("{" + name + "}", quote(str(values[name]), safe=""))
        params = {k: v for k, v in (query or {}).items() if v is not None}
        unknown = set(params) - op.query
        if unknown:
            raise ValueError(f"{operation_id} has no query parameter {sorted(unknown)} (it has {sorted(op.query)})")
        if isinstance(body, dict) and op.body and set(body) - set(op.body):
            raise ValueError(f"{operation_id} has no field {sorted(set(body) - set(op.body))} (it has {list(op.body)})")
        out = {"User-Agent": self.user_agent, "Accept": "application/json, text/plain", **self.extra_headers}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        if self.organization_id and ORG_HEADER in op.headers:
            out[ORG_HEADER] = self.organization_id
        out.update(headers or {})
        if "Idempotency-Key" in op.headers and "Idempotency-Key" not in out:
            # One key per call, kept across retries: a retried creation is answered with the first one's record.
            out["Idempotency-Key"] = uuid.uuid4().hex
        return Request(op, op.method, self.base_url + path, params, body, out)

    def retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying a 429/503, or None to give up: after `max_retries`, or when the
        server asks for a longer wait than `max_retry_wait` (waiting less would not honour it)."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        delay = retry_after(response)
        if delay is None:
            # A 503 without Retry-After is a refusal that waiting does not cure (compute is off, a dependency is
            # down) unless the error says it is retryable; a 429 always passes with time.
            if response.status_code == 503 and not _retryable(response):
                return None
            delay = min(0.5 * 2 ** attempt, self.max_retry_wait)
        return delay if delay <= self.max_retry_wait else None

    def result(self, request: Request, response: httpx.Response) -> Any:
        """The decoded answer (JSON, a LogChunk for the run logs, None when empty), or the typed error."""
        if response.status_code >= 400:
            raise to_error(response)
        if request.operation.operation_id in _SIGN_IN:
            token = response.json().get("token")
            if token:
                self.token = token
        if request.operation.operation_id == "getJobRunLogs":
            return LogChunk(response.text, int(response.headers.get("LakeSail-Log-Offset", "0")),
                            response.headers.get("LakeSail-Run-Status", ""))
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text


def server_trust(base_url: str) -> Any:
    """What the client's own httpx transport checks servers' certificates against (its `verify`): httpx's default
    for an https server (its CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR). A server spoken to over plain HTTP gets a
    context that trusts no one instead: loading the bundle costs ~25 ms, more than a small request, and nothing
    does a TLS handshake with this context on such a client (it follows no redirects; a proxy's own TLS uses the
    proxy's context). Should one happen all the same, it fails verification rather than passing unverified."""
    if urlsplit(base_url).scheme.lower() != "http":
        return True
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names, against no roots


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110 section 10.2.3)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _retryable(response: httpx.Response) -> bool:
    try:
        return bool(response.json()["error"]["details"]["retryable"])
    except (ValueError, KeyError, TypeError):
        return False


def to_error(response: httpx.Response) -> ApiError:
    try:
        err = response.json().get("error") or {}
    except ValueError:
        err = {}
    if not isinstance(err, dict):
        err = {}
    details = err.get("details") if isinstance(err.get("details"), dict) else {}
    message = err.get("message") or (response.text.strip()[:200] or response.reason_phrase)
    return error_class(response.status_code)(
        response.status_code, str(err.get("code") or f"http_{response.status_code}"), str(message),
        error_type=str(err.get("errorType") or ""),
        request_id=(details or {}).get("requestId") or response.headers.get("x-request-id"),
        details=details, retry_after=retry_after(response))


def next_query(op: Operation, body: Any, query: dict[str, Any]) -> dict[str, Any] | None:
    """The query of the next page of a list, or None when this was the last: `marker` lists continue from the
    marker the answer names; `page` lists ask for the next page until a short page or `total` is reached."""
    if not isinstance(body, dict):
        return None
    items = body.get("items") or []
    if "marker" in op.query:
        marker = body.get("marker")
        return {**query, "marker": marker} if marker and items else None
    if "page" in op.query:
        page = int(query.get("page") or 1)
        limit = int(query.get("limit") or 100)
        total = body.get("total")
        if not items or len(items) < limit or (isinstance(total, int) and page * limit >= total):
            return None
        return {**query, "page": page + 1}
    return None
