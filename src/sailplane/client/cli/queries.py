"""`sailplane queries list|describe`: the organization's saved SQL queries. A query is named by its ID or its name.
(The API saves queries but does not run them: run the SQL on a session, see `sailplane sessions connect`.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sailplane.client.cli.common import OutputOption, ProfileOption, api, by_id, emit, one_named
from sailplane.client.cli.profiles import DEFAULT_PROFILE

if TYPE_CHECKING:
    from sailplane.client import Client

queries = typer.Typer(help="Saved SQL queries.", no_args_is_help=True)
QueryArg = Annotated[str, typer.Argument(help="The query's ID or name.")]
COLUMNS = [("ID", lambda q: q["id"]), ("NAME", lambda q: q.get("name")), ("CATALOG", lambda q: q.get("catalogId")),
           ("TEAMS", lambda q: ", ".join(q.get("teamIds") or [])), ("UPDATED", lambda q: q.get("updatedAt"))]


def _rows(client: Client) -> list[dict[str, Any]]:
    """Each query's record with the teams it is shared with."""
    rows: list[dict[str, Any]] = []
    for page in client.pages("listQueries"):
        records = by_id(page["included"].get("queries"))
        for item in page.get("items") or []:
            rows.append({**records.get(item["queryId"], {"id": item["queryId"]}), "teamIds": item.get("teamIds")})
    return rows


@queries.command("list")
def list_queries(profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """The saved queries you can see."""
    with api(profile) as client:
        rows = _rows(client)
    emit(output, rows, COLUMNS)


@queries.command("describe")
def describe(query: QueryArg, profile: ProfileOption = DEFAULT_PROFILE, output: OutputOption = "table") -> None:
    """One query with its SQL (printed under the table; the whole record with `--output json`)."""
    with api(profile) as client:
        found = one_named(_rows(client), query, "saved query", "queries")
        body = client.call("describeQuery", {"query": found["id"]})
    record = {**by_id(body["included"].get("queries")).get(body["item"]["queryId"], {}),
              "teamIds": body["item"].get("teamIds")}
    emit(output, record, COLUMNS, rows=[record])
    if output == "table":
        print(record.get("sql", ""))
