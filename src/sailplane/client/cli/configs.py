"""`sailplane configs list|describe`: the named compute profiles (workload configs) sessions start from. A config is
named by its ID or its name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sailplane.client.cli.common import OutputOption, ProfileOption, api, emit, one_named
from sailplane.client.cli.profiles import DEFAULT_PROFILE

if TYPE_CHECKING:
    from sailplane.client import Client

configs = typer.Typer(help="Workload configs: named compute profiles for sessions.", no_args_is_help=True)
ConfigArg = Annotated[str, typer.Argument(help="The config's ID or name.")]
TeamOption = Annotated[str | None, typer.Option("--team", help="Only this team's configs (its ID).")]
COLUMNS = [("ID", lambda c: c["id"]), ("NAME", lambda c: c.get("name")), ("TYPE", lambda c: c.get("workloadType")),
           ("CLUSTER", lambda c: c.get("clusterId")), ("TEAM", lambda c: c.get("teamId")),
           ("UPDATED", lambda c: c.get("updatedAt"))]


def _all(client: Client, team: str | None = None) -> list[dict[str, Any]]:
    return list(client.iterate("listWorkloadConfigs", query={"teamId": team} if team else None))


@configs.command("list")
def list_configs(team: TeamOption = None, profile: ProfileOption = DEFAULT_PROFILE,
                 output: OutputOption = "table") -> None:
    """The configs of your teams (every team's for organization admins)."""
    with api(profile) as client:
        rows = _all(client, team)
    emit(output, rows, COLUMNS)


@configs.command("describe")
def describe(config: ConfigArg, profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """One config in full (its settings and endpoint limits are in `--output json`)."""
    with api(profile) as client:
        found = one_named(_all(client), config, "workload config", "configs")
        body = client.call("describeWorkloadConfig", {"workloadConfig": found["id"]})
    emit(output, body, COLUMNS, rows=[body])
