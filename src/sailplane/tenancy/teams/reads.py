"""The queries of the read routes (describeTeam, listTeams): Core rows in wire order, no ORM objects.

A 100-team page read into ORM objects, then validated into response models and dumped again, ran at
a quarter of a bare endpoint's rate; these rows go straight into the response (`TEAM_VIEW.render`, the
TeamItem JSON derived from the schema, kit.views). Statements are built once: constructing a select()
per request cost more than running it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Select, bindparam, func, select

from sailplane.kit.dialect import Dialect, dialect_of
from sailplane.kit.views import row_view
from sailplane.tenancy.teams.models import Team, TeamMemberRole
from sailplane.tenancy.teams.schemas import TeamItem, TeamView

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

# TeamItem's fields in order; timestamps in their wire form, made by the database (kit.wire_sql): also
# inside SQLite's packed pages.
TEAM_VIEW = row_view(TeamItem, _TEAMS, nested={"team": TeamView}, computed={"member_count": _MEMBER_COUNT})
TEAM_COLUMNS = TEAM_VIEW.columns
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


PageKey = tuple[bool, str, str]  # (sees all teams, sort by, direction)
_PAGES: dict[PageKey, Select[Any]] = {
    (sees_all, sort_by, direction): _page_statement(sees_all, sort_by, direction)
    for sees_all in (True, False) for sort_by in ("name", "email") for direction in ("asc", "desc")
}
_PACKED_PAGES = {key: Dialect.packed(page) for key, page in _PAGES.items()}
COUNTS = {
    True: select(func.count()).select_from(_TEAMS).where(_IN_ORG),
    False: select(func.count()).select_from(_TEAMS).where(_IN_ORG, _IN_OWN_TEAMS),
}


def fetch_page(conn: Connection, key: PageKey, params: dict[str, Any]) -> Sequence[TeamRow]:
    """One page of teams (params org_id, offset, limit, and team_ids unless all are seen), packed into
    one row where that is cheaper (kit.dialect's packs_pages)."""
    if not dialect_of(conn).packs_pages:
        return conn.execute(_PAGES[key], params).all()
    rows: list[list[Any]] = json.loads(conn.execute(_PACKED_PAGES[key], params).scalar_one())
    return rows
