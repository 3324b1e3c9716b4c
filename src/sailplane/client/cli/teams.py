"""`sailplane teams list`."""

from __future__ import annotations

import typer

from sailplane.client.cli.common import OutputOption, ProfileOption, api, emit
from sailplane.client.cli.profiles import DEFAULT_PROFILE

teams = typer.Typer(help="Teams of the organization.", no_args_is_help=True)


@teams.command("list")
def list_teams(profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """Every team you can see, with its member count."""
    with api(profile) as client:
        items = list(client.iterate("listTeams"))
    emit(output, items, [("ID", lambda t: t["team"]["id"]), ("NAME", lambda t: t["team"]["name"]),
                         ("MEMBERS", lambda t: t.get("memberCount"))])
