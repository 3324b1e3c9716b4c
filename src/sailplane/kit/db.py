"""Engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, String, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from sailplane.kit.clock import as_utc, utcnow
from sailplane.kit.ids import new_id

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


def id_column() -> Mapped[str]:
    return mapped_column(String(20), primary_key=True, default=new_id)


class Timestamps:
    """createdAt/createdBy/updatedAt/updatedBy, present on every record of the contract."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(20), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(20), default=None)


def make_engine(url: str, *, pool_size: int = 20, max_overflow: int = 20, pool_timeout: float = 30.0) -> Engine:
    """An engine whose pool keeps `pool_size` connections (plus `max_overflow` opened on demand and closed on
    return); a checkout waits at most `pool_timeout` seconds for a free one."""
    if url.startswith("sqlite"):
        # A connection discarded on return (pool overflow) costs a reconnect plus pragmas on the next checkout.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # persistent: set once per file
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout,
                         pool_pre_ping=True)


# Session.info key: set while `release` commits a transaction that only read (see auth.principal's GRANTS).
READ_ONLY_COMMIT = "sailplane.read_only_commit"
# Session.info keys: the current transaction wrote (a flush or a non-SELECT statement); work to do after commit.
_WROTE = "sailplane.wrote"
_AFTER_COMMIT = "sailplane.after_commit"


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not state.is_select:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_WROTE, None)
    for fn in session.info.pop(_AFTER_COMMIT, ()):
        fn()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_WROTE, None)
    session.info.pop(_AFTER_COMMIT, None)


def wrote(session: Session) -> bool:
    """Whether the session's transaction has changes to commit (pending ORM changes included)."""
    return bool(session.info.get(_WROTE) or session.new or session.dirty or session.deleted)


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run `fn` once the session's current transaction commits (and never if it rolls back).

    For what must only happen once the data is there for everyone: services flush, the unit of work that
    owns the session (a request, a loop iteration) commits, and then this runs. `fn` must not use the
    session (it is between transactions) and should not raise: the data is committed either way."""
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


def commit_request(session: Session) -> None:
    """The end of a request's unit of work: commit what it wrote, or end a transaction that only read.

    A read-only transaction is rolled back rather than committed, which is the same to the database and
    tells the after-commit listeners (auth.principal's GRANTS) that nothing changed."""
    if wrote(session):
        session.commit()
    elif session.in_transaction():
        session.rollback()


def commit_before_raising(session: Session) -> None:
    """Commit now what must outlive the error the caller is about to raise (the request rolls back on an
    error): a failed attempt's audit record, a throttle count, a code or link spent by a wrong guess."""
    session.commit()


def checkpoint(session: Session) -> None:
    """Commit the unit of work's writes so far, mid-way and on purpose (say why at the call site): before an
    outside call that must only happen once they are committed, or so another connection or node sees a row
    while this one goes on."""
    session.commit()


def release(session: Session) -> None:
    """End the session's transaction so its connection goes back to the pool now, not when the session closes.

    For a transaction that only read, ahead of a wait for anything else (the request's next worker thread, a
    remote server): holding a pooled connection across such a wait is how a busy server runs out of
    connections while every thread waits for one. Loaded objects stay usable (expire_on_commit=False); the
    next statement checks out a connection again. Pending ORM changes, should there be any, are committed as
    by any commit."""
    if not session.in_transaction():
        return
    if wrote(session):
        session.commit()
        return
    session.info[READ_ONLY_COMMIT] = True
    try:
        session.commit()
    finally:
        session.info.pop(READ_ONLY_COMMIT, None)


class Database:
    """Owns the engine and the session factory for one app instance (or for one part of it: the server gives
    its background loops a pool of their own, so request load cannot starve them, nor they the requests)."""

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 20, pool_timeout: float = 30.0) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def set_session_info(self, key: str, value: Any) -> None:
        """Put `value` under `key` in the `info` of every session made from now on (None takes it out): how the
        app hands something of its own to code that only sees a session, set where the app is composed."""
        info = dict(self.sessions.kw.get("info") or {})
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
        self.sessions.configure(info=info)

    def dispose(self) -> None:
        self.engine.dispose()
