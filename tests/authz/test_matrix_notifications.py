"""The authorization matrix of notifications (channels, rules, deliveries, event types).

Targets: an email channel and a rule of team 1 (made by its Developer `member_t1`), `member_t1`'s own email
channel, and an organization channel (made by the owner). A team's are seen by whoever sees team 1 (its members,
the organization admins, the service account with CanViewTeam organization-wide) and changed by those holding
CanManageNotifications there (Developer, Team Admin, organization admins; the Viewer and that service account
get 403); a member's own only by them and the organization admins; the organization's are seen by everyone of
it and changed by the admins. Another organization's callers get 404 (and their own, empty lists)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.matrix import CALLERS, TEAM1, Case, Context, by_caller, lists, once, run_cases
from tests.support.world import World

MANAGERS = frozenset({"owner", "admin", "member_t1", "teamadmin_t1"})
SEES_TEAM1 = TEAM1 | {"sa_with_policy"}
IN_ORG = frozenset(CALLERS) - {"outsider", "outsider_in_org", "anonymous"}


def _channel(actor: Any, **body: Any) -> str:
    r = actor.post("/notifications/channels", json={"type": "email", "name": "Matrix channel", "config": {}, **body})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def fresh_team_channel(w: World) -> Context:
    return {"channel": _channel(w.member_t1, teamId=w.team1)}


def fresh_team_rule(w: World) -> Context:
    channel = shared_team_channel(w)["channel"]
    r = w.member_t1.post("/notifications/rules", json={"name": "Matrix rule", "eventTypes": ["job_run.failed"],
                                                       "channelIds": [channel], "scopeType": "team",
                                                       "teamId": w.team1})
    assert r.status_code == 201, r.text
    return {"rule": r.json()["id"], "channel": channel}


def own_channel(w: World) -> Context:
    return {"channel": _channel(w.member_t1, memberId=w.member_t1.member_id)}


def org_channel(w: World) -> Context:
    return {"channel": _channel(w.owner, config={"memberId": w.owner.member_id})}


shared_team_channel = once(fresh_team_channel)
shared_team_rule = once(fresh_team_rule)
shared_own_channel = once(own_channel)
shared_org_channel = once(org_channel)


def cases() -> list[Case]:
    channel = lambda w, c: f"/notifications/channels/{c['channel']}"  # noqa: E731
    rule = lambda w, c: f"/notifications/rules/{c['rule']}"  # noqa: E731
    manage = lambda ok=200: by_caller(ok, MANAGERS, seen=SEES_TEAM1)  # noqa: E731
    in_org = by_caller(200, CALLERS, outsider_in_org=404)
    # A team the caller cannot see (team 2's member, the policy-less service account, another organization's
    # owner naming our team) is unknown: 422 on its teamId.
    create = by_caller(201, MANAGERS, seen=SEES_TEAM1, member_t2=422, sa_without_policy=422, outsider=422)
    org_admins = by_caller(200, {"owner", "admin"}, seen=IN_ORG)
    return [
        Case("listNotificationEventTypes", "GET", lambda w, c: "/notifications/event-types", in_org),
        Case("listNotificationChannels", "GET", lambda w, c: "/notifications/channels", in_org,
             setup=shared_team_channel, check=lists("channel", SEES_TEAM1)),
        Case("listNotificationChannels", "GET", lambda w, c: "/notifications/channels", in_org,
             setup=shared_own_channel, check=lists("channel", {"owner", "admin", "member_t1"}), label="own"),
        Case("createNotificationChannel", "POST", lambda w, c: "/notifications/channels", create,
             body=lambda c: {"type": "email", "name": "Created by the matrix", "teamId": c["team"], "config": {}},
             setup=lambda w: {"team": w.team1}),
        Case("describeNotificationChannel", "GET", channel, by_caller(200, SEES_TEAM1), setup=shared_team_channel),
        Case("describeNotificationChannel", "GET", channel, by_caller(200, {"owner", "admin", "member_t1"}),
             setup=shared_own_channel, label="a member's own"),
        Case("describeNotificationChannel", "GET", channel, by_caller(200, IN_ORG), setup=shared_org_channel,
             label="the organization's"),
        Case("updateNotificationChannel", "PATCH", channel, manage(), setup=shared_team_channel,
             body=lambda c: {"name": "Renamed by the matrix"}),
        Case("updateNotificationChannel", "PATCH", channel, org_admins, setup=shared_org_channel,
             body=lambda c: {"name": "Renamed by the matrix"}, label="the organization's"),
        Case("deleteNotificationChannel", "DELETE", channel, manage(), setup=shared_team_channel,
             fresh=fresh_team_channel),
        Case("sendTestNotification", "POST", lambda w, c: f"/notifications/channels/{c['channel']}/test", manage(),
             setup=shared_team_channel),
        Case("listNotificationRules", "GET", lambda w, c: "/notifications/rules", in_org, setup=shared_team_rule,
             check=lists("rule", SEES_TEAM1)),
        Case("createNotificationRule", "POST", lambda w, c: "/notifications/rules", create,
             setup=lambda w: shared_team_channel(w) | {"team": w.team1},
             body=lambda c: {"name": "Created by the matrix", "eventTypes": ["job_run.any_terminal"],
                             "channelIds": [c["channel"]], "scopeType": "team", "teamId": c["team"]}),
        Case("describeNotificationRule", "GET", rule, by_caller(200, SEES_TEAM1), setup=shared_team_rule),
        Case("updateNotificationRule", "PATCH", rule, manage(), setup=shared_team_rule,
             body=lambda c: {"enabled": False}),
        Case("deleteNotificationRule", "DELETE", rule, manage(), setup=shared_team_rule, fresh=fresh_team_rule),
        Case("listNotificationDeliveries", "GET", lambda w, c: "/notifications/deliveries", in_org),
    ]


@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix(core_world: World, caller: str) -> None:
    run_cases(core_world, caller, cases())
