"""Applying and checking Alembic migrations programmatically (on start and by `sailplane migrate`).

Alembic (with mako and pygments, ~10 MB of a server's memory) is imported only to apply migrations: whether the
schema is current is read with one query against the head this package's version files name. The revisions form
one chain, `NNNN_<name>.py` carrying `revision = 'NNNN'` (tests/service/test_migrations.py holds both to
Alembic's own view), so the head is the highest prefix."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def upgrade_unless_current(database_url: str) -> None:
    """A restart on a current schema neither loads Alembic nor takes its locks."""
    engine = create_engine(database_url)
    try:
        if is_current(engine):
            return
    finally:
        engine.dispose()
    upgrade(database_url)


@functools.cache
def head_revision() -> str:
    return max(path.name.split("_", 1)[0] for path in (HERE / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The schema's revision; None before the first migration."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
