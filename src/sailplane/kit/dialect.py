"""The database's dialect, one object: what the modules branch on between PostgreSQL and SQLite, and the
SQL fragments that differ. Callers ask it (`dialect_of(conn).lateral`) instead of comparing names, so a
difference between the two databases is written down once, with its reason.

Timestamps in their wire form are a compiled SQL function (`kit.wire_sql.wire_timestamp`), chosen by
SQLAlchemy per dialect; everything else the modules need is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, func, make_url, select
from sqlalchemy.orm import Session

POSTGRESQL, SQLITE = "postgresql", "sqlite"
S = TypeVar("S", bound=Select)  # type: ignore[type-arg]


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def is_postgresql(self) -> bool:
        return self.name == POSTGRESQL

    @property
    def row_locks(self) -> bool:
        """`SELECT … FOR UPDATE SKIP LOCKED` exists (PostgreSQL); SQLite serializes writers instead, so
        claims there take its write lock one row at a time."""
        return self.is_postgresql

    @property
    def lateral(self) -> bool:
        """LATERAL subqueries exist (PostgreSQL; SQLite has none, so per-row work is separate queries)."""
        return self.is_postgresql

    @property
    def packs_pages(self) -> bool:
        """Read a page as one packed JSON row (`packed`): SQLite's driver releases the GIL for every row it
        steps, and with requests running in other threads each release became a thread switch costing more
        than the row. PostgreSQL's driver reads a result whole, so there the rows come as they are."""
        return self.name == SQLITE

    def insert_ignoring_duplicates(self, table: Any) -> Any:
        """`INSERT … ON CONFLICT DO NOTHING` (both databases have it; SQLAlchemy builds it per dialect): rows
        that would break a unique constraint are left out instead of failing the transaction."""
        if self.is_postgresql:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    def skip_locked(self, stmt: S) -> S:
        """`stmt` taking row locks that concurrent claimers skip, where the database has them."""
        return stmt.with_for_update(skip_locked=True) if self.row_locks else stmt  # type: ignore[return-value]

    @staticmethod
    def packed(page: Select[Any]) -> Select[Any]:
        """The page as one JSON array of row arrays, in one row (SQLite's JSON functions; see packs_pages).
        SQLite does not flatten an ordered subquery into an aggregate, so the array keeps the page's order."""
        rows = page.subquery()
        return select(func.json_group_array(func.json_array(*rows.c)))


_KNOWN = {POSTGRESQL: Dialect(POSTGRESQL), SQLITE: Dialect(SQLITE)}


def dialect_of(source: Connection | Engine | Session | str) -> Dialect:
    """The dialect of a connection, engine, session or database URL."""
    if isinstance(source, str):
        name = make_url(source).get_backend_name()
    elif isinstance(source, Session):
        name = source.get_bind().dialect.name
    else:
        name = source.dialect.name
    return _KNOWN.get(name) or Dialect(name)
