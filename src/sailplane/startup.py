"""What keeps the server from starting, said in one line.

Configuration mistakes (a database URL that does not parse or names a database we do not support, a
database that does not answer, a data directory that is a file or read-only, a gateway port that is
taken, a host without bubblewrap or the workload user) surface deep inside libraries as exceptions
whose tracebacks run to hundreds of lines. The CLI runs each start-up step inside `step(...)`, which
turns whatever fails into a `StartupError` naming the setting and the cause; the CLI prints that line
(the traceback only at debug level) and exits non-zero.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

SUPPORTED_DATABASES = "SQLite (sqlite:///<path>) or PostgreSQL (postgresql://user:password@host:port/database)"
# The drivers installed with Sailplane, per database.
_DRIVERS = {"sqlite": {"pysqlite"}, "postgresql": {"psycopg"}}
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


class StartupError(Exception):
    """The server cannot start as configured; the message says why, in one line."""


def one_line(text: str) -> str:
    """Collapse a multi-line library message (psycopg's, SQLite's) into one line."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    return " ".join(p if p.endswith((".", ":", "?", "!")) or i == len(parts) - 1 else p + "."
                    for i, p in enumerate(parts))


def safe_url(url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is not shown at all (it may hold a password)
        return "<unparseable>"


def check_database_url(url: str) -> URL:
    """The parsed URL of a database and driver Sailplane runs on, or StartupError."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StartupError(f"SAILPLANE_DATABASE_URL cannot be parsed ({one_line(str(exc))}); use "
                           f"{SUPPORTED_DATABASES}") from exc
    try:
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    except NoSuchModuleError:
        backend, driver = parsed.drivername.partition("+")[0], parsed.drivername.partition("+")[2]
    if backend not in _DRIVERS:
        hint = " (write postgresql://)" if backend in ("postgres", "pgsql") else ""
        raise StartupError(f"unsupported database {backend!r} in SAILPLANE_DATABASE_URL{hint}: Sailplane runs on "
                           f"{SUPPORTED_DATABASES}")
    if driver not in _DRIVERS[backend]:
        raise StartupError(f"unsupported database driver {parsed.drivername!r} in SAILPLANE_DATABASE_URL: use "
                           f"{SUPPORTED_DATABASES}")
    return parsed


def check_data_dir(path: Path) -> None:
    """The data directory exists (or can be made), is a directory and is writable."""
    if path.exists() and not path.is_dir():
        raise StartupError(f"the data directory {path} (SAILPLANE_DATA_DIR) is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StartupError(_data_dir_message(path, exc)) from exc


def _data_dir_message(path: Path, exc: OSError) -> str:
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return f"the data directory {path} (SAILPLANE_DATA_DIR) is not a directory (a file is in the way)"
    if exc.errno in _UNWRITABLE:
        return f"the data directory {path} (SAILPLANE_DATA_DIR) is not writable: {exc.strerror}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the data directory {path} (SAILPLANE_DATA_DIR) is on a full disk: {exc.strerror}"
    return f"the data directory {path} (SAILPLANE_DATA_DIR) cannot be used: {_os_error(exc)}"


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def describe(what: str, exc: BaseException) -> str:
    """One line for a failure of the start-up step `what`."""
    if isinstance(exc, StartupError):
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{what}: {one_line(str(exc.orig))}"
    if isinstance(exc, SQLAlchemyError):
        return f"{what}: {one_line(str(exc).split('(Background on this error', 1)[0])}"
    if isinstance(exc, OSError):
        return f"{what}: {_os_error(exc)}"
    text = one_line(str(exc)) if str(exc).strip() else type(exc).__name__
    return f"{what}: {text}"


@contextmanager
def step(what: str) -> Iterator[None]:
    """Run a start-up step; any failure becomes a StartupError saying `what` failed and why."""
    try:
        yield
    except StartupError:
        raise
    except Exception as exc:
        raise StartupError(describe(what, exc)) from exc
