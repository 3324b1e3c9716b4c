"""Databases of a test's own beside the shared test database.

Run tests use a database of their own (a second SQLite file, or a second database on the test
PostgreSQL server): every server on a database dispatches its ready runs, so other test servers
on the shared database would otherwise execute (and hold the logs of) these tests' runs.
"""

from __future__ import annotations

from pathlib import Path

from sailplane.kit.ids import new_id


def fresh_database(database_url: str, directory: Path) -> str:
    """An empty database beside the shared test database (same engine)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{directory / f'runs-{new_id().lower()}.db'}"
    import psycopg

    base, _, _name = database_url.rpartition("/")
    name = f"runs_{new_id().lower()}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"
