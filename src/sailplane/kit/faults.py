"""Faults of the server's own environment, recognized so they are reported as what they are.

A full disk reaches us as SQLite's SQLITE_FULL ("database or disk is full"), PostgreSQL's `disk_full`
(SQLSTATE 53100) or an OSError ENOSPC/EDQUOT from a file we write (outbox, job output), usually
wrapped by SQLAlchemy. None of these is "busy": retrying does not help until someone frees space.
"""

from __future__ import annotations

import errno
import sqlite3

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_PG_DISK_FULL = "53100"


def storage_full_cause(exc: BaseException) -> str | None:
    """What says the storage is full, when `exc` (or what it wraps) means that; else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.Error) and (
                getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(current)):
            return f"SQLite: {current}"
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL:
            return f"PostgreSQL: {str(current).strip().splitlines()[0] if str(current).strip() else 'disk full'}"
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            where = f": {current.filename}" if current.filename else ""
            return f"{current.strerror}{where}"
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


STORAGE_FULL_MESSAGE = ("The server's storage is full, so nothing can be saved; an administrator must free disk space. "
                        "Reading still works.")
