"""The Alembic migrations create exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Connection, column, create_engine, inspect, make_url, table, text
from sqlalchemy.sql.expression import TableClause

from sailplane.kit.db import Base, UTCDateTime
from sailplane.kit.models_registry import load_all_models
from sailplane.migrations.runner import (
    alembic_config,
    current_revision,
    head_revision,
    is_current,
    upgrade,
    upgrade_unless_current,
)
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


def test_every_migration_is_logged_on_one_line() -> None:
    """Alembic logs a migration's first docstring paragraph at each upgrade, and `sailplane serve` prints that log
    above its one-line errors (tests/cli/test_startup_errors.py): a paragraph of two lines broke them (0011)."""
    scripts = list(ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions())
    assert len(scripts) >= 11
    assert [s.revision for s in scripts if "\n" in s.doc or not s.doc.strip()] == []


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
            _organization(conn, "ORG1", ["TEAM1"], stamps)
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


def test_existing_clusters_stay_shared_with_their_organizations_teams(fresh_database_url: str) -> None:
    """0011: every provisioned cluster recorded before sharing existed is shared with every team of its
    organization (what those teams could use until then), and with no team of another organization."""
    upgrade(fresh_database_url, "0010")
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    engine = create_engine(fresh_database_url)
    try:
        with engine.begin() as conn:
            for org, teams in (("ORG1", ("T1A", "T1B")), ("ORG2", ("T2A",)), ("ORG3", ())):
                _organization(conn, org, teams, stamps)
                conn.execute(_table("connections", "id", "organization_id", "name", "provider", "account_id", "region",
                                    "role_name", "external_id", "stack_name", "status").insert(),
                             {"id": f"C{org}", "organization_id": org, "name": "c", "provider": "aws",
                              "account_id": "123456789012", "region": "us-east-1", "role_name": "r",
                              "external_id": "x", "stack_name": "s", "status": "active", **stamps})
                conn.execute(_table("networks", "id", "organization_id", "connection_id", "name", "region", "cidr",
                                    "adopted", "iac_outputs", "status").insert(),
                             {"id": f"N{org}", "organization_id": org, "connection_id": f"C{org}", "name": "n",
                              "region": "us-east-1", "cidr": "10.0.0.0/16", "adopted": True, "iac_outputs": {},
                              "status": "active", **stamps})
                clusters = _table("provisioned_clusters", "id", "organization_id", "connection_id", "network_id",
                                  "name", "region", "kubernetes_version", "node_group", "public_access_cidrs",
                                  "iac_outputs", "status")
                for cluster, status in ((f"K{org}", "active"), (f"P{org}", "pending")):
                    conn.execute(clusters.insert(),
                                 {"id": cluster, "organization_id": org, "connection_id": f"C{org}",
                                  "network_id": f"N{org}", "name": cluster, "region": "us-east-1",
                                  "kubernetes_version": "1.35", "node_group": {}, "public_access_cidrs": [],
                                  "iac_outputs": {}, "status": status, **stamps})
        upgrade(fresh_database_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT cluster_id, team_id, created_at FROM provisioned_cluster_teams "
                                     "ORDER BY cluster_id, team_id")).all()
    finally:
        engine.dispose()
    assert [(r[0], r[1]) for r in rows] == [("KORG1", "T1A"), ("KORG1", "T1B"), ("KORG2", "T2A"),
                                            ("PORG1", "T1A"), ("PORG1", "T1B"), ("PORG2", "T2A")]
    assert all(r[2] is not None for r in rows)


def _organization(conn: Connection, org: str, teams: Iterable[str], stamps: dict[str, datetime]) -> None:
    """An organization row and its teams' rows, as an older schema stores them."""
    conn.execute(_table("organizations", "id", "name", "require_mfa").insert(),
                 {"id": org, "name": org, "require_mfa": False, **stamps})
    for team in teams:
        conn.execute(_table("teams", "id", "organization_id", "name", "default_role_id").insert(),
                     {"id": team, "organization_id": org, "name": team, "default_role_id": "R", **stamps})


def _table(name: str, *columns: str) -> TableClause:
    json_columns = {"config", "endpoint_limits", "iac_outputs", "node_group", "public_access_cidrs"}
    types = {c: JSON() if c in json_columns else None for c in columns}
    return table(name, *(column(c, types[c]) for c in columns),
                 column("created_at", UTCDateTime(timezone=True)), column("updated_at", UTCDateTime(timezone=True)))


def test_the_head_read_from_the_files_is_alembics() -> None:
    """The server reads the head from the version files' names (no Alembic at start): it holds while the
    revisions are one chain named by their prefixes."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == scripts.get_current_head()
    for script in scripts.walk_revisions():
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
        if script.down_revision is not None:
            assert int(str(script.down_revision)) == int(script.revision) - 1, script.path


def test_a_schema_is_current_only_at_the_head(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        assert current_revision(engine) is None and not is_current(engine)
        upgrade(fresh_database_url, "0010")
        assert current_revision(engine) == "0010" and not is_current(engine)
        upgrade_unless_current(fresh_database_url)
        assert current_revision(engine) == head_revision() and is_current(engine)
    finally:
        engine.dispose()
