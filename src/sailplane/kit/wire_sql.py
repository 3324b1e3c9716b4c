"""`wire_timestamp(column)`: a UTC timestamp column rendered by the database in its wire form;
`wire_column(column)` applies it to the timestamp columns of a listing's select, leaving the rest.

The wire form is `kit.clock.iso`'s (what every `Timestamp` field serializes to):
`2026-04-06T12:34:56.789Z`, milliseconds truncated, not rounded. A page of 100 runs has 800
timestamps; having the database format them saves the driver building 800 datetime objects and
Python formatting each again, which was the largest per-row cost of the run listings.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import KeyedColumnElement
from sqlalchemy.sql.functions import FunctionElement

from sailplane.kit.db import UTCDateTime


class wire_timestamp(FunctionElement[str]):  # lower case: used like a SQL function
    """NULL stays NULL. Supported on PostgreSQL and SQLite (the databases Sailplane runs on)."""

    type = String()
    inherit_cache = True


@compiles(wire_timestamp, "postgresql")
def _postgresql(element: wire_timestamp, compiler: SQLCompiler, **kw: Any) -> str:
    # timestamptz → UTC wall time; MS truncates like isoformat(timespec="milliseconds").
    column = compiler.process(element.clauses, **kw)
    return f"""to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


@compiles(wire_timestamp, "sqlite")
def _sqlite(element: wire_timestamp, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'; a value without the fraction still
    # gets '.000' (the first three digits of the fraction, zero-padded: truncation).
    column = compiler.process(element.clauses, **kw)
    return (f"substr({column}, 1, 10) || 'T' || substr({column}, 12, 8) || '.' || "
            f"substr(substr({column}, 21) || '000', 1, 3) || 'Z'")


@compiles(wire_timestamp)
def _other(element: wire_timestamp, compiler: SQLCompiler, **kw: Any) -> str:
    if compiler.dialect.name == "default":  # str(statement), for reading only
        return f"wire_timestamp({compiler.process(element.clauses, **kw)})"
    raise CompileError(f"wire_timestamp is not implemented for {compiler.dialect.name}")


def wire_column(column: KeyedColumnElement[Any]) -> ColumnElement[Any]:
    """The column as a listing reads it: a UTC timestamp (kit.db.UTCDateTime) in its wire form, labelled
    with the column's name; any other column as it is."""
    return wire_timestamp(column).label(column.key) if isinstance(column.type, UTCDateTime) else column
