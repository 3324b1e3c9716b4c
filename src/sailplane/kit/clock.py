"""One place for "now", so tests and schedulers can reason about time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    tz = value.tzinfo
    if tz is UTC:
        return value
    return value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = as_utc(value)
    # Naive isoformat plus "Z" is what the wire wants, and cheaper than formatting the offset away.
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
