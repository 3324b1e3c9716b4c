"""The request is the unit of work (auth.deps.get_db): one commit after the route returned, before the
response is sent; a rollback on any error; kit.db.after_commit work only once the data is committed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Column, Integer, MetaData, Table, event, insert, select
from sqlalchemy.orm import Session

from sailplane.iam.auth.deps import Db
from sailplane.kit.db import Database, after_commit

ROWS = Table("uow_rows", MetaData(), Column("n", Integer, primary_key=True))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[FastAPI, Database, list[str]]]:
    database = Database(f"sqlite:///{tmp_path / 'uow.db'}", pool_size=2, max_overflow=0)
    ROWS.create(database.engine)
    events: list[str] = []
    app = FastAPI()
    app.state.db = database

    @app.post("/write/{n}")
    def write(n: int, db: Db) -> dict[str, int]:
        db.execute(insert(ROWS).values(n=n))
        after_commit(db, lambda: events.append(f"committed {n}"))
        events.append(f"returned {n}")
        return {"n": n}

    @app.post("/fail/{n}")
    def fail(n: int, db: Db) -> None:
        db.execute(insert(ROWS).values(n=n))
        after_commit(db, lambda: events.append(f"committed {n}"))
        raise RuntimeError("the route failed after writing")

    @app.post("/refuse-commit/{n}")
    def refuse_commit(n: int, db: Db) -> dict[str, int]:
        db.execute(insert(ROWS).values(n=n))

        @event.listens_for(db, "before_commit")
        def _refuse(_session: Session) -> None:
            raise RuntimeError("the commit failed")

        return {"n": n}

    yield app, database, events
    database.dispose()


def _stored(database: Database) -> list[int]:
    with database.session() as db:
        return list(db.scalars(select(ROWS.c.n).order_by(ROWS.c.n)))


def test_a_request_commits_once_after_the_route_returned(app: tuple[FastAPI, Database, list[str]]) -> None:
    api, database, events = app
    with TestClient(api) as client:
        assert client.post("/write/1").json() == {"n": 1}
    assert _stored(database) == [1]
    assert events == ["returned 1", "committed 1"]


def test_an_error_rolls_the_request_back_and_skips_after_commit_work(
        app: tuple[FastAPI, Database, list[str]]) -> None:
    api, database, events = app
    with TestClient(api, raise_server_exceptions=False) as client:
        assert client.post("/fail/2").status_code == 500
    assert _stored(database) == []
    assert events == []


def test_a_failed_commit_is_never_answered_with_a_success(app: tuple[FastAPI, Database, list[str]]) -> None:
    api, database, _events = app
    with TestClient(api, raise_server_exceptions=False) as client:
        assert client.post("/refuse-commit/3").status_code == 500
    assert _stored(database) == []
