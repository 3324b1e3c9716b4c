"""`sailplane teams list|create` and `sailplane teams members list|add|remove`. A team is named by its ID or name, a
member by their member ID or email, a team role by its ID or name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sailplane.client.cli.common import OutputOption, ProfileOption, api, emit, fail, one_named
from sailplane.client.cli.profiles import DEFAULT_PROFILE

if TYPE_CHECKING:
    from sailplane.client import Client

teams = typer.Typer(help="Teams of the organization.", no_args_is_help=True)
members = typer.Typer(help="The members of a team.", no_args_is_help=True)
teams.add_typer(members, name="members")
TeamArg = Annotated[str, typer.Argument(help="The team's ID or name.")]
MemberArg = Annotated[str, typer.Argument(help="The member's ID or email.")]
TEAM_COLUMNS = [("ID", lambda t: t["team"]["id"]), ("NAME", lambda t: t["team"]["name"]),
                ("MEMBERS", lambda t: t.get("memberCount"))]
MEMBER_COLUMNS = [("ID", lambda m: m["member"]["id"]), ("EMAIL", lambda m: m["member"]["email"]),
                  ("NAME", lambda m: m["member"].get("displayName")),
                  ("ROLES", lambda m: ", ".join(r["name"] for r in m.get("roles") or []))]


def _team(client: Client, given: str) -> str:
    rows = [item["team"] for item in client.iterate("listTeams")]
    return str(one_named(rows, given, "team", "teams")["id"])


def _member(client: Client, given: str) -> str:
    """A member ID as given, or the member whose email it is (the organization's member search)."""
    if "@" not in given:
        return given
    for item in client.iterate("searchMembers", query={"filter": given}):
        if item["member"]["email"].lower() == given.lower():
            return str(item["member"]["id"])
    fail(f"no member of the organization has the email {given!r}")


def _role(client: Client, given: str) -> str:
    rows = [item["role"] for item in client.iterate("listTeamRoles")]
    return str(one_named(rows, given, "team role", "team roles")["id"])


@teams.command("list")
def list_teams(profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Every team you can see, with its member count."""
    with api(profile) as client:
        items = list(client.iterate("listTeams"))
    emit(output, items, TEAM_COLUMNS)


@teams.command("create")
def create(name: Annotated[str, typer.Argument(help="The team's name (unique in the organization).")],
           description: Annotated[str | None, typer.Option(help="What the team is for.")] = None,
           email: Annotated[str | None, typer.Option(help="The team's contact email.")] = None,
           default_role: Annotated[str | None, typer.Option(help="The team role new members get (ID or name; "
                                                                 "default: the server's).")] = None,
           profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Create a team (organization owners and admins)."""
    with api(profile) as client:
        body: dict[str, Any] = {"name": name, "description": description, "email": email}
        if default_role:
            body["defaultRoleId"] = _role(client, default_role)
        team = client.call("createTeam", body={k: v for k, v in body.items() if v is not None})
    emit(output, team, TEAM_COLUMNS, rows=[team])


@members.command("list")
def list_members(team: TeamArg, profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """A team's members and their team roles."""
    with api(profile) as client:
        items = list(client.iterate("listTeamMembers", {"team": _team(client, team)}))
    emit(output, items, MEMBER_COLUMNS)


@members.command("add")
def add(team: TeamArg, member: MemberArg,
        role: Annotated[list[str] | None, typer.Option("--role", help="A team role (ID or name), repeatable "
                                                                      "(default: the team's default role).")] = None,
        profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Add a member of the organization to a team (or set their roles in it)."""
    with api(profile) as client:
        body = {"roleIds": [_role(client, r) for r in role]} if role else {}
        added = client.call("addTeamMember", {"team": _team(client, team), "member": _member(client, member)},
                            body=body)
    emit(output, added, MEMBER_COLUMNS, rows=[added])


@members.command("remove")
def remove(team: TeamArg, member: MemberArg, profile: ProfileOption = DEFAULT_PROFILE) -> None:
    """Take a member out of a team."""
    with api(profile) as client:
        client.call("removeTeamMember", {"team": _team(client, team), "member": _member(client, member)})
    print(f"Removed {member} from team {team}.")
