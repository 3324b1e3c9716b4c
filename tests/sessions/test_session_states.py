"""The session transitions table is enforced by the one compare-and-set every writer uses
(sailplane.workloads.session_states), on the real database: a closed or failed session never
becomes open again, and no edge outside the table is taken.

A server without compute (no session controller) on a database of this module's own; the session
rows are added directly (test setup: no Sail server is needed to change a status), and a session is
put into the state a case starts from by a plain UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, select, update

from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.tenancy.teams.models import Team
from sailplane.workloads import instance_states, session_states
from sailplane.workloads.models import ComputeInstance, InteractiveSession, WorkloadConfig
from sailplane.workloads.session_states import ACTIVE, CLOSED, FAILED, IDLE, OPEN_STATES, PENDING, SESSION_STATES
from tests.conftest import make_settings
from tests.support.actors import signup
from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.support.world import create_team


@pytest.fixture(scope="module")
def states_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = fresh_database(database_url, tmp_path_factory.mktemp("session-states-db"))
    data_dir: Path = tmp_path_factory.mktemp("session-states-data")
    live = LiveServer(make_settings(data_dir, url, None, compute_enabled=False))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def db(states_server: LiveServer) -> Iterator[Database]:
    database = Database(states_server.settings.database_url)  # after the server: its start migrated it
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def instance(states_server: LiveServer, db: Database) -> tuple[str, str, str, str]:
    """(organization, team, workload config, compute instance) the test sessions belong to."""
    owner = signup(f"{states_server.url}/api/v1")
    team_id = create_team(owner, f"session-states-{new_id()}")
    with db.session() as s:
        team = s.get(Team, team_id)
        assert team is not None
        config = WorkloadConfig(organization_id=team.organization_id, team_id=team_id, workload_type="spark_connect",
                                cluster_id="LOCAL", content_hash=new_id())
        s.add(config)
        s.flush()
        row = ComputeInstance(organization_id=team.organization_id, workload_config_id=config.id, cluster_id="LOCAL",
                              backend="local", node="nowhere", status="stopped")
        s.add(row)
        s.commit()
        return team.organization_id, team_id, config.id, row.id


@pytest.fixture
def session_id(db: Database, instance: tuple[str, str, str, str]) -> str:
    org_id, team_id, config_id, instance_id = instance
    with db.session() as s:
        row = InteractiveSession(organization_id=org_id, team_id=team_id, workload_config_id=config_id,
                                 compute_instance_id=instance_id, endpoint_type="spark_connect", name="states",
                                 idle_timeout_seconds=60, idle_close_delay_seconds=60, max_duration_seconds=3600,
                                 timeout_at=utcnow() + timedelta(hours=1))
        s.add(row)
        s.commit()
        return row.id


def put(db: Database, session_id: str, status: str) -> None:
    with db.session() as s:
        s.execute(update(InteractiveSession).where(InteractiveSession.id == session_id).values(status=status))
        s.commit()


def row(db: Database, session_id: str) -> InteractiveSession:
    with db.session() as s:
        found = s.get(InteractiveSession, session_id)
        assert found is not None
        return found


def move(db: Database, session_id: str, target: str, **kwargs: Any) -> bool:
    with db.session() as s:
        done = session_states.transition(s, session_id, target, **kwargs)
        s.commit()
        return done


def test_every_pair_of_states_follows_the_table(db: Database, session_id: str) -> None:
    for source in SESSION_STATES:
        for target in SESSION_STATES:
            put(db, session_id, source)
            expected = session_states.allowed(source, target)
            if target not in session_states.TRANSITIONS:  # pending: nothing ever goes back to it
                with pytest.raises(ValueError):
                    move(db, session_id, target)
            else:
                assert move(db, session_id, target) is expected, f"{source} → {target}"
            assert row(db, session_id).status == (target if expected else source), f"{source} → {target}"


def test_an_ended_session_never_opens_again(db: Database, session_id: str) -> None:
    for ended in (CLOSED, FAILED):
        put(db, session_id, ended)
        for target in (ACTIVE, IDLE, CLOSED, FAILED):
            assert move(db, session_id, target) is False, (ended, target)
        assert row(db, session_id).status == ended
        with db.session() as s:  # the controller's batched call recording
            session_states.transition_each(s, [{"b_id": session_id, "b_at": utcnow()}], ACTIVE, source=OPEN_STATES,
                                           values={"last_activity_at": bindparam("b_at")})
            s.commit()
        assert row(db, session_id).status == ended


def test_an_idle_session_is_not_idled_again_and_stamps_follow_the_target(db: Database, session_id: str) -> None:
    put(db, session_id, IDLE)
    with db.session() as s, pytest.raises(ValueError):
        session_states.transition(s, session_id, IDLE, source=(IDLE,))
    put(db, session_id, ACTIVE)
    assert move(db, session_id, IDLE, source=(PENDING, ACTIVE)) is True
    assert row(db, session_id).idle_since is not None
    with db.session() as s:
        session_states.transition_each(s, [{"b_id": session_id, "b_at": utcnow()}], ACTIVE,
                                       values={"last_activity_at": bindparam("b_at")})
        s.commit()
    woke = row(db, session_id)
    assert (woke.status, woke.idle_since) == (ACTIVE, None) and woke.last_activity_at is not None
    assert move(db, session_id, CLOSED, values={"termination_reason": "closed_by_user"}) is True
    ended = row(db, session_id)
    assert (ended.status, ended.termination_reason) == (CLOSED, "closed_by_user") and ended.closed_at is not None
    with db.session() as s:
        assert s.scalar(select(InteractiveSession.status).where(InteractiveSession.id == session_id)) == CLOSED


def test_every_pair_of_instance_states_follows_the_table(db: Database, instance: tuple[str, str, str, str]) -> None:
    """Compute instances: the same compare-and-set, their own table; terminal states never change."""
    instance_id = instance[3]
    for source in instance_states.INSTANCE_STATES:
        for target in instance_states.INSTANCE_STATES:
            with db.session() as s:
                s.execute(update(ComputeInstance).where(ComputeInstance.id == instance_id).values(
                    status=source, cleaned_at=None))
                if target not in instance_states.TRANSITIONS:
                    with pytest.raises(ValueError):
                        instance_states.transition(s, instance_id, target)
                    continue
                moved = instance_states.transition(s, instance_id, target)
                s.commit()
                found = s.get(ComputeInstance, instance_id)
                assert found is not None
                assert moved == instance_states.allowed(source, target), (source, target)
                assert found.status == (target if moved else source)
                assert (found.cleaned_at is not None) == (moved and target in instance_states.TERMINAL_STATES)
    with db.session() as s:
        with pytest.raises(ValueError):
            instance_states.transition(s, instance_id, instance_states.RUNNING, source=(instance_states.STOPPED,))
        assert instance_states.transition(s, [], instance_states.STOPPED) == 0
        s.execute(update(ComputeInstance).where(ComputeInstance.id == instance_id).values(status="stopped"))
        s.commit()
