"""The queries of the read routes (describeTeam, listTeams): Core rows in wire order, no ORM objects.

A 100-team page read into ORM objects, then validated into response models and dumped again, ran at
a quarter of a bare endpoint's rate; these rows go straight into the response (router.team_doc).
Statements are built once: constructing a select() per request cost more than running it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Select, bindparam, func, select

from sailplane.kit.wire_sql import wire_column
from sailplane.teams.models import Team, TeamMemberRole

TeamRow = Sequence[Any]  # the values of TEAM_COLUMNS, in that order

_TEAMS = Team.__table__
_ROLES = TeamMemberRole.__table__
# Members of the row's team, as a correlated subquery: one round trip for teams and their counts.
_MEMBER_COUNT = (
    select(func.count(func.distinct(_ROLES.c.member_id)))
    .where(_ROLES.c.team_id == _TEAMS.c.id)
    .correlate(_TEAMS)
    .scalar_subquery()
)


# Timestamps in their wire form, made by the database (kit.wire_sql): also inside SQLite's packed pages.
TEAM_COLUMNS = (
    *(wire_column(_TEAMS.c[name]) for name in ("id", "organization_id", "name", "description", "email", "created_at",
                                               "created_by", "updated_at", "updated_by", "default_role_id")),
    _MEMBER_COUNT.label("member_count"),
)
_TEAM_ROWS: Select[Any] = select(*TEAM_COLUMNS)
ONE_TEAM = _TEAM_ROWS.where(_TEAMS.c.id == bindparam("team_id"), _TEAMS.c.organization_id == bindparam("org_id"))
_IN_ORG = _TEAMS.c.organization_id == bindparam("org_id")
_IN_OWN_TEAMS = _TEAMS.c.id.in_(bindparam("team_ids", expanding=True))


def _page_statement(sees_all: bool, sort_by: str, direction: str) -> Select[Any]:
    """A page (params offset, limit) of the organization's teams, or of those in team_ids, sorted on an
    allow-listed key with the ID breaking ties."""
    stmt = _TEAM_ROWS.where(_IN_ORG) if sees_all else _TEAM_ROWS.where(_IN_ORG, _IN_OWN_TEAMS)
    if sort_by == "email":
        # Teams without an email come last in either direction, on SQLite and PostgreSQL alike.
        stmt = stmt.order_by(_TEAMS.c.email.is_(None))
        key: Any = _TEAMS.c.email
    else:
        key = func.lower(_TEAMS.c.name)
    order = (key.desc(), _TEAMS.c.id.desc()) if direction == "desc" else (key, _TEAMS.c.id)
    return stmt.order_by(*order).offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer))


def _packed(page: Select[Any]) -> Select[Any]:
    """The page as one JSON array of row arrays, in one row. SQLite does not flatten an ordered subquery
    into an aggregate, so the array keeps the page's order."""
    rows = page.subquery()
    return select(func.json_group_array(func.json_array(*rows.c)))


PageKey = tuple[bool, str, str]  # (sees all teams, sort by, direction)
_PAGES: dict[PageKey, Select[Any]] = {
    (sees_all, sort_by, direction): _page_statement(sees_all, sort_by, direction)
    for sees_all in (True, False) for sort_by in ("name", "email") for direction in ("asc", "desc")
}
_PACKED_PAGES = {key: _packed(page) for key, page in _PAGES.items()}
COUNTS = {
    True: select(func.count()).select_from(_TEAMS).where(_IN_ORG),
    False: select(func.count()).select_from(_TEAMS).where(_IN_ORG, _IN_OWN_TEAMS),
}


def fetch_page(conn: Connection, key: PageKey, params: dict[str, Any]) -> Sequence[TeamRow]:
    """One page of teams (params org_id, offset, limit, and team_ids unless all are seen).

    SQLite reads it as one packed row: its driver releases the GIL for every row it steps, and with
    requests running in other threads each release became a thread switch costing more than the row.
    PostgreSQL's driver reads a result whole, so there the rows come as they are."""
    if conn.dialect.name != "sqlite":
        return conn.execute(_PAGES[key], params).all()
    rows: list[list[Any]] = json.loads(conn.execute(_PACKED_PAGES[key], params).scalar_one())
    return rows
