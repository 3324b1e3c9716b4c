"""The machinery of the authorization matrices: callers, cases, expected statuses, and the loop that
calls every case as one caller and checks the exact status (and what a response may show).

Callers (tests.support.world): the Owner and an Admin (organization roles with allTeams); in team 1
a Developer (`member_t1`), a Viewer and a Team Admin; a Developer of team 2 only; the owner of
another organization, in their own organization (`outsider`) and with our organization header
(`outsider_in_org`); service accounts with and without a policy; and no credentials at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.actors import Actor, assert_error
from tests.support.world import World

CALLERS = ("owner", "admin", "member_t1", "viewer_t1", "teamadmin_t1", "member_t2", "outsider",
           "outsider_in_org", "sa_with_policy", "sa_without_policy", "anonymous")
USERS = frozenset({"owner", "admin", "member_t1", "viewer_t1", "teamadmin_t1", "member_t2", "outsider"})
# Who sees what is shared with team 1 through team roles (every team role can view) or allTeams.
TEAM1 = frozenset({"owner", "admin", "member_t1", "viewer_t1", "teamadmin_t1"})
# Who may change what team 1 owns (the Developer and Team Admin roles; org admins everywhere).
TEAM1_WRITERS = TEAM1 - {"viewer_t1"}

Context = dict[str, Any]
Setup = Callable[[World], Context]
# A check of a successful response: an error message, or None when it is right for this caller.
Check = Callable[[str, Context, httpx.Response], str | None]


def _nothing(_w: World) -> Context:
    return {}


@dataclass
class Case:
    op: str
    method: str
    path: Callable[[World, Context], str]
    expected: dict[str, int]
    setup: Setup = field(default=_nothing)
    body: Callable[[Context], Any] | None = None
    # The target for a caller expected to succeed, when the call uses it up (closes, deletes, enrolls);
    # callers expected to be refused get `setup`'s shared one, so refusals cost no fresh records.
    fresh: Setup | None = None
    # Setup that only the caller can do for themselves (self-service routes); merged into the context.
    as_caller: Callable[[World, Actor, Context], Context] | None = None
    headers: Callable[[Context], dict[str, str]] | None = None
    check: Check | None = None
    # Undo what a successful call started (a session, a released run), so nothing keeps running.
    after: Callable[[World, Context, httpx.Response], None] | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return f"{self.op}[{self.label}]" if self.label else self.op


def once(make: Setup) -> Setup:
    """A setup whose target is made on first use and then shared within the world: for the callers
    who are refused (see Case.fresh), or for calls that change nothing."""

    def setup(w: World) -> Context:
        key = f"{make.__module__}.{make.__qualname__}"
        if key not in w.shared:
            w.shared[key] = make(w)
        return dict(w.shared[key])

    return setup


def statuses(admins: int, members: int, sa_without: int, outsider: int, *, member_t1: int | None = None,
             member_t2: int | None = None, anonymous: int = 401, outsider_in_org: int = 404,
             viewer_t1: int | None = None, teamadmin_t1: int | None = None) -> dict[str, int]:
    """Team 1's Viewer and Team Admin get what its Developer gets unless told otherwise."""
    t1 = member_t1 if member_t1 is not None else members
    return {
        "owner": admins, "admin": admins, "sa_with_policy": admins,
        "member_t1": t1,
        "viewer_t1": viewer_t1 if viewer_t1 is not None else t1,
        "teamadmin_t1": teamadmin_t1 if teamadmin_t1 is not None else t1,
        "member_t2": member_t2 if member_t2 is not None else members,
        "sa_without_policy": sa_without, "outsider": outsider, "outsider_in_org": outsider_in_org,
        "anonymous": anonymous,
    }


def org_admin_only(ok: int, own_org_ok: bool = False) -> dict[str, int]:
    """Organization-level admin operations: admins (and the SA with a policy) only."""
    return statuses(ok, 403, 403, ok if own_org_ok else 404)


def everyone_in_org(ok: int = 200, outsider: int = 200, sa: int | None = None) -> dict[str, int]:
    return statuses(ok, ok, ok if sa is None else sa, outsider)


def team_scoped(ok: int, member_t1: int) -> dict[str, int]:
    """Team 1 routes: team 2's member and the policy-less service account cannot see team 1 at all."""
    return statuses(ok, 404, 404, 404, member_t1=member_t1, member_t2=404)


def users_only(ok: int = 200, sa: int = 400) -> dict[str, int]:
    """The caller's own account: any signed-in user (in an organization they belong to); not API keys."""
    return statuses(ok, ok, sa, ok) | {"sa_with_policy": sa}


def by_caller(ok: int, allowed: Iterable[str], *, seen: Iterable[str] = (), seen_status: int = 403,
              others: int = 404, anonymous: int = 401, **overrides: int) -> dict[str, int]:
    """`ok` for `allowed`, `seen_status` for callers who can see the target but may not do this,
    `others` (404: they cannot see it) for everyone else; then `overrides` by caller name."""
    allowed, seen = frozenset(allowed), frozenset(seen)
    result = {c: ok if c in allowed else seen_status if c in seen else others for c in CALLERS}
    result["anonymous"] = anonymous
    unknown = set(overrides) - set(CALLERS)
    assert not unknown, unknown
    return result | overrides


def lists(key: str, visible: Iterable[str]) -> Check:
    """A listing: context[key] (an ID) appears in the body exactly for the callers in `visible`."""
    visible = frozenset(visible)

    def check(caller: str, context: Context, r: httpx.Response) -> str | None:
        shown = str(context[key]) in r.text
        if shown != (caller in visible):
            return f"{key} {context[key]} {'listed' if shown else 'missing'}"
        return None

    return check


def run_cases(world: World, caller: str, cases: list[Case], hidden: Iterable[str] = ()) -> None:
    """Every case as `caller`: the exact status; 404 bodies (and every body: `hidden`) reveal nothing."""
    actor = world.callers()[caller]
    never_shown = [s for s in hidden if s]
    secrets = [s for s in secrets_of(world) if s]
    failures = []
    for case in cases:
        want = case.expected[caller]
        make = case.fresh if case.fresh is not None and want < 400 else case.setup
        context = make(world)
        if case.as_caller is not None:
            context = context | case.as_caller(world, actor, context)
        path = case.path(world, context)
        kwargs: dict[str, Any] = {}
        if case.body is not None:
            kwargs["json"] = case.body(context)
        if case.headers is not None:
            kwargs["headers"] = case.headers(context)
        r = actor.request(case.method, path, **kwargs)
        where = f"{case.name} {case.method} {path}"
        if r.status_code != want:
            failures.append(f"{where}: expected {want}, got {r.status_code} {r.text[:200]}")
            continue
        leaked = [s for s in never_shown if s in r.text]
        if leaked:
            failures.append(f"{where}: the response shows {leaked}")
        if want >= 400:
            err = assert_error(r, want)
            if want == 404:
                if err["code"] not in {"not_found", "organization_not_found"}:
                    failures.append(f"{where}: 404 with code {err['code']}")
                targets = [v for v in context.values() if isinstance(v, str) and len(v) >= 8]
                shown = [s for s in [*secrets, *targets] if s in r.text]
                if shown:
                    failures.append(f"{where}: the 404 body reveals {shown}")
            continue
        if case.check is not None:
            problem = case.check(caller, context, r)
            if problem:
                failures.append(f"{where}: {problem}")
        if case.after is not None:
            case.after(world, context, r)
    assert not failures, f"{caller}:\n" + "\n".join(failures)


def secrets_of(w: World) -> list[str]:
    """Things a 404 must never echo back: our team names, our members' emails."""
    members = (w.owner, w.admin, w.member_t1, w.viewer_t1, w.teamadmin_t1, w.member_t2)
    return ["Team One", "Team Two", "World Org", *(m.email or "" for m in members)]
