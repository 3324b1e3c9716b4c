"""The Alembic migrations create exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, column, create_engine, inspect, make_url, table, text
from sqlalchemy.sql.expression import TableClause

from sailplane.kit.db import Base, UTCDateTime
from sailplane.kit.models_registry import load_all_models
from sailplane.migrations.runner import upgrade
from tests.support.server import LiveServer


def test_migrations_match_the_models(server: LiveServer, database_url: str) -> None:
    load_all_models()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], diff


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database next to the suite's (same kind, same server)."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"sailplane_migration_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
    finally:
        admin.dispose()


def test_compute_instance_pids_become_refs(fresh_database_url: str) -> None:
    """Instances running across the upgrade keep their process (ref = pid) and are adopted as before."""
    upgrade(fresh_database_url, "0001")
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    engine = create_engine(fresh_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(_table("organizations", "id", "name", "require_mfa").insert(),
                         {"id": "ORG1", "name": "o", "require_mfa": False, **stamps})
            conn.execute(_table("teams", "id", "organization_id", "name", "default_role_id").insert(),
                         {"id": "TEAM1", "organization_id": "ORG1", "name": "t", "default_role_id": "R", **stamps})
            conn.execute(_table("workload_configs", "id", "organization_id", "team_id", "inline", "workload_type",
                                "cluster_id", "config", "endpoint_limits", "content_hash").insert(),
                         {"id": "CFG1", "organization_id": "ORG1", "team_id": "TEAM1", "inline": True,
                          "workload_type": "sail", "cluster_id": "LOCAL", "config": {}, "endpoint_limits": {},
                          "content_hash": "h", **stamps})
            instances = _table("compute_instances", "id", "organization_id", "workload_config_id", "cluster_id",
                               "backend", "node", "status", "shared", "shutdown_policy", "pid")
            for iid, pid in (("INST1", 4242), ("INST2", None)):
                conn.execute(instances.insert(),
                             {"id": iid, "organization_id": "ORG1", "workload_config_id": "CFG1", "cluster_id": "LOCAL",
                              "backend": "local", "node": "n", "status": "running", "shared": False,
                              "shutdown_policy": "when_unused", "pid": pid, **stamps})
        upgrade(fresh_database_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, ref FROM compute_instances ORDER BY id")).all()
            columns = [c["name"] for c in inspect(conn).get_columns("compute_instances")]
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("INST1", "4242"), ("INST2", None)]
    assert "pid" not in columns and "ref" in columns


def _table(name: str, *columns: str) -> TableClause:
    json_columns = {"config", "endpoint_limits"}
    types = {c: JSON() if c in json_columns else None for c in columns}
    return table(name, *(column(c, types[c]) for c in columns),
                 column("created_at", UTCDateTime(timezone=True)), column("updated_at", UTCDateTime(timezone=True)))
