"""Sending one delivery: the message each channel type takes, and the attempt's outcome.

Webhook: POST of the JSON body with `Idempotency-Key` (the delivery ID, also the body's `id`: a receiver drops a
duplicate), `LakeSail-Timestamp` (Unix seconds, also the body's `timestamp`, so a receiver can refuse a replay)
and, with a signing secret, `LakeSail-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. Slack: an incoming
webhook message. PagerDuty: an Events API v2 `trigger` (dedup key: the event). Rootly: an alert (JSON:API).
Email: through the mailer, to the member or every member of the team. Timeouts, connection errors, 408/425/429
and 5xx are worth another attempt (`retryable`, with the server's `Retry-After`); anything else is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.models import User
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import release
from sailplane.kit.ids import new_id
from sailplane.notifications import event_types, service
from sailplane.notifications.mailer.service import Mailer
from sailplane.notifications.models import NotificationChannel, NotificationDelivery
from sailplane.notifications.urls import PinnedTransport, UnsafeUrl, check_url
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.teams.models import TeamMemberRole

# httpx logs every request's URL at INFO, and a Slack incoming webhook URL is a secret: its loggers stay at WARNING
# or above whatever the root logger's level, so no log line ever carries one.
for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level < logging.WARNING:  # NOTSET (0) too: it would follow the root logger
        logging.getLogger(_name).setLevel(logging.WARNING)

RETRYABLE_CODES = frozenset({408, 425, 429})
USER_AGENT = "Sailplane-Notifications/1"


@dataclass(frozen=True)
class Target:
    """A channel as one attempt needs it: its type, public config, decrypted secrets and email recipients."""

    type: str
    config: dict[str, Any]
    secrets: dict[str, str]
    recipients: tuple[str, ...] = ()


@dataclass
class Outcome:
    ok: bool
    retryable: bool = False
    response_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    duration_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def recipients(db: Session, channel: NotificationChannel) -> tuple[str, ...]:
    """The email addresses of an email channel's member, or of every member of its team (now)."""
    member_id, team_id = channel.config.get("memberId"), channel.config.get("teamId")
    stmt = select(User.email).join(Member, Member.user_id == User.id).where(
        Member.organization_id == channel.organization_id)
    if member_id:
        stmt = stmt.where(Member.id == member_id)
    elif team_id:
        stmt = stmt.where(Member.id.in_(select(TeamMemberRole.member_id).where(TeamMemberRole.team_id == team_id)))
    else:
        return ()
    return tuple(sorted(set(db.scalars(stmt))))


def target(db: Session, channel: NotificationChannel, encryptor: Encryptor) -> Target:
    public = {k: v for k, v in channel.config.items() if not k.startswith("_")}
    return Target(channel.type, public, service.secrets_of(channel, encryptor),
                  recipients(db, channel) if channel.type == "email" else ())


def summary(delivery_id: str, body: dict[str, Any]) -> str:
    kind = event_types.BY_KEY.get(str(body.get("type")))
    label = kind.label if kind is not None else "Test notification"
    run = (body.get("data") or {}).get("jobRun")
    if run:
        job = run.get("jobKey") or run.get("jobId")
        text = f"{label}: job {job}, run {run.get('id')} (attempt {run.get('attempt')})"
        return f"{text}: {run['statusMessage']}" if run.get("statusMessage") else text
    resource = body.get("resource") or {}
    return f"{label}: {resource.get('type')} {resource.get('id')}" if resource.get("id") else \
        f"{label} from Sailplane (delivery {delivery_id})."


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _post(client: httpx.Client, url: str, content: bytes, headers: dict[str, str]) -> Outcome:
    started = time.monotonic()
    try:
        response = client.post(url, content=content, headers={"User-Agent": USER_AGENT, **headers})
    except UnsafeUrl as exc:  # the connection's own lookup (urls.PinnedTransport): not retried, it is the target
        return Outcome(False, error=f"URL refused: {exc}", duration_ms=int((time.monotonic() - started) * 1000))
    except httpx.TimeoutException:
        return Outcome(False, True, error="timed out", duration_ms=int((time.monotonic() - started) * 1000))
    except httpx.HTTPError as exc:
        return Outcome(False, True, error=f"could not connect: {type(exc).__name__}",
                       duration_ms=int((time.monotonic() - started) * 1000))
    duration = int((time.monotonic() - started) * 1000)
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(True, response_code=code, duration_ms=duration)
    retryable = code in RETRYABLE_CODES or code >= 500
    return Outcome(False, retryable, code, f"HTTP {code}: {response.text[:300]}", _retry_after(response), duration)


def webhook_body(delivery_id: str, body: dict[str, Any], timestamp: int) -> bytes:
    return json.dumps({"id": delivery_id, "timestamp": timestamp, **body}, separators=(",", ":")).encode()


def http_client(settings: Settings) -> httpx.Client:
    """The client attempts go through (thread-safe, shared by a sender's attempts: connections and TLS set-up are
    reused); never follows redirects (a 3xx is the receiver's answer, not a new target); every connection goes to
    an address the SSRF guard checked (urls.PinnedTransport)."""
    transport = PinnedTransport(allow_loopback=settings.notifications_allow_loopback,
                                nameservers=settings.dns_nameservers, timeout=settings.dns_timeout_seconds,
                                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
    return httpx.Client(timeout=settings.notifications_timeout_seconds, follow_redirects=False, transport=transport)


def send(to: Target, delivery_id: str, body: dict[str, Any], settings: Settings, mailer: Mailer,
         client: httpx.Client | None = None) -> Outcome:
    """One attempt (through `client`, or a client of its own). Never raises for the receiver's or the network's
    failures (they are the outcome)."""
    if client is None:
        with http_client(settings) as own:
            return send(to, delivery_id, body, settings, mailer, own)
    text = summary(delivery_id, body)
    if to.type == "webhook":
        url = str(to.config.get("url"))
        try:
            # The connection checks the host's addresses again (and connects to one it checked); here: the URL's
            # form, and that plain http goes to loopback only.
            check_url(url, allow_loopback=settings.notifications_allow_loopback,
                      resolve=url.lower().startswith("http:"), nameservers=settings.dns_nameservers,
                      timeout=settings.dns_timeout_seconds)
        except UnsafeUrl as exc:
            return Outcome(False, error=f"webhook URL refused: {exc}")
        timestamp = int(time.time())
        raw = webhook_body(delivery_id, body, timestamp)
        headers = {"Content-Type": "application/json", "Idempotency-Key": delivery_id,
                   "LakeSail-Timestamp": str(timestamp)}
        secret = to.secrets.get("signingSecret")
        if secret:
            headers["LakeSail-Signature"] = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return _post(client, url, raw, headers)
    if to.type == "slack":
        message = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        if to.config.get("channel"):
            message["channel"] = to.config["channel"]
        return _post(client, to.secrets["webhookUrl"], json.dumps(message).encode(),
                     {"Content-Type": "application/json"})
    if to.type == "pager_duty":
        event = {"routing_key": to.secrets["routingKey"], "event_action": "trigger",
                 "dedup_key": str(body.get("eventId") or delivery_id),
                 "payload": {"summary": text[:1024], "source": "sailplane",
                             "severity": to.config.get("severity", "error"),
                             "timestamp": body.get("occurredAt"),
                             "component": (body.get("resource") or {}).get("type"),
                             "class": body.get("type"), "custom_details": body.get("data") or {}}}
        return _post(client, settings.pagerduty_events_url.rstrip("/") + "/v2/enqueue",
                     json.dumps(event).encode(), {"Content-Type": "application/json"})
    if to.type == "rootly":
        alert = {"data": {"type": "alerts", "attributes": {
            "source": "sailplane", "summary": text[:255], "description": json.dumps(body.get("data") or {}),
            "external_id": delivery_id,
            "labels": [{"key": "event_type", "value": str(body.get("type"))},
                       {"key": "severity", "value": to.config.get("severity", "error")}]}}}
        return _post(client, settings.rootly_api_url.rstrip("/") + "/v1/alerts", json.dumps(alert).encode(),
                     {"Content-Type": "application/vnd.api+json",
                      "Authorization": f"Bearer {to.secrets['apiToken']}"})
    # email
    if not to.recipients:
        return Outcome(False, error="the channel's member or team has no email address")
    started = time.monotonic()
    try:
        for address in to.recipients:
            mailer.send(address, f"[Sailplane] {text}"[:200],
                        f"{text}\n\n{json.dumps(body, indent=2)}\n\nDelivery {delivery_id}.\n")
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(False, True, error=f"mail not sent: {type(exc).__name__}: {exc}"[:500],
                       duration_ms=int((time.monotonic() - started) * 1000))
    return Outcome(True, duration_ms=int((time.monotonic() - started) * 1000))


def send_test(db: Session, principal: Principal, channel_id: str, settings: Settings,
              mailer: Mailer) -> NotificationDelivery:
    """sendTestNotification: one attempt now, recorded as a delivery (no rule); `verifiedAt` on success."""
    channel = service.get_channel(db, principal, channel_id, manage=True)
    now = utcnow()
    body = {"type": event_types.TEST, "occurredAt": now.isoformat().replace("+00:00", "Z"),
            "organizationId": channel.organization_id, "resource": {"type": "notification_channel", "id": channel.id},
            "data": {"message": f"A test notification for the channel {channel.name!r}."}}
    to = target(db, channel, Encryptor(settings.secret_key))
    row = NotificationDelivery(id=new_id(), organization_id=channel.organization_id, channel_id=channel.id,
                               event_id=f"test:{new_id()}", event_type=event_types.TEST,
                               resource_type="notification_channel", resource_id=channel.id, payload=body,
                               status="delivering", attempts=0)
    release(db)  # the attempt may take seconds: no pooled connection held meanwhile
    outcome = send(to, row.id, body, settings, mailer)
    done = utcnow()
    row.attempts, row.first_attempt_at, row.last_attempt_at = 1, done, done
    row.response_code, row.duration_ms = outcome.response_code, outcome.duration_ms
    if outcome.ok:
        row.status, row.delivered_at = "delivered", done
        channel.verified_at, channel.status_message = done, None
    else:
        row.status, row.last_error = "failed", outcome.error
        channel.status_message = f"The last test failed: {outcome.error}"[:2000]
    db.add(row)
    db.add(channel)
    db.flush()
    return row
