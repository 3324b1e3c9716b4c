"""A database of a test's own on the run's backend: for a server whose background loops (the dispatcher) must not
claim other tests' rows, or whose counts must be exactly what the test did."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from sailplane.kit.ids import new_id


def fresh_database(database_url: str, tmp_path: Path, prefix: str = "own") -> str | None:
    """A new empty database's URL; None on SQLite (the caller's default: a file in its data directory)."""
    if database_url.startswith("sqlite"):
        return None
    import psycopg

    url = make_url(database_url)
    name = f"{prefix}_{new_id().lower()}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def fresh_database_url(database_url: str, tmp_path: Path, prefix: str = "own") -> str:
    """Like fresh_database, with SQLite's file named explicitly (for a server made in this process)."""
    return fresh_database(database_url, tmp_path, prefix) or f"sqlite:///{tmp_path / f'{prefix}.db'}"
