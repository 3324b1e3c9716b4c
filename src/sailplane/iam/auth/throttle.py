"""Login throttling per account and per IP, with the same answer whether or not the account exists."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.models import AuthThrottle
from sailplane.kit.clock import utcnow
from sailplane.kit.errors import ApiError

IP_FACTOR = 4  # many people can share one address (NAT), so the IP limit is looser


def _keys(email: str, ip: str | None) -> list[tuple[str, int]]:
    keys = [(f"email:{email}", 1)]
    if ip:
        keys.append((f"ip:{ip}", IP_FACTOR))
    return keys


def check_not_locked(db: Session, email: str, ip: str | None) -> None:
    now = utcnow()
    for key, _factor in _keys(email, ip):
        row = db.get(AuthThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = max(1, math.ceil((row.locked_until - now).total_seconds()))
            raise ApiError(429, "too_many_attempts",
                           "Too many failed sign-in attempts; try again later.",
                           retry_after=wait, retryable=True)


def record_failure(db: Session, settings: Settings, email: str, ip: str | None) -> None:
    now = utcnow()
    window = timedelta(seconds=settings.login_failure_window_seconds)
    for key, factor in _keys(email, ip):
        row = db.get(AuthThrottle, key)
        if row is None:
            row = AuthThrottle(key=key, failures=0, window_started_at=now)
            db.add(row)
        if now - row.window_started_at > window:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= settings.login_max_failures * factor:
            row.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            row.failures = 0
            row.window_started_at = now


def record_success(db: Session, email: str) -> None:
    row = db.get(AuthThrottle, f"email:{email}")
    if row is not None:
        db.delete(row)
