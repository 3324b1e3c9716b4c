"""What every user command shares: the `--profile`/`--output` options, a client for the profile, one clear line
and a non-zero exit for any failure, and output as a rich table or JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from sailplane.client.cli.profiles import DEFAULT_PROFILE, Profile, load
from sailplane.httpx_loading import import_httpx_without_cli

if TYPE_CHECKING:
    from sailplane.client import Client

ProfileOption = Annotated[str, typer.Option("--profile", "-p", envvar="SAILPLANE_PROFILE",
                                            help="The saved login to use (see `sailplane login`).")]
DEFAULT = DEFAULT_PROFILE


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"sailplane: error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def profile_or_fail(name: str) -> Profile:
    profile = load(name)
    if profile is None or not profile.token:
        fail(f"not logged in (profile {name!r}): run `sailplane login --url <server>`" +
             ("" if name == DEFAULT else f" --profile {name}"))
    return profile


def client_for(profile: Profile) -> Client:
    import_httpx_without_cli()
    from sailplane.client import Client

    return Client(profile.url, token=profile.token, organization_id=profile.organization_id)


@contextmanager
def api(profile_name: str) -> Iterator[Client]:
    """A client for the profile; any failure of the API ends the command with one line."""
    profile = profile_or_fail(profile_name)
    with errors(profile_name), client_for(profile) as client:
        yield client


@contextmanager
def errors(profile_name: str = DEFAULT, *, signing_in: bool = False) -> Iterator[None]:
    """Exit codes: 1 the API refused, 3 not signed in (wrong password or code, expired token), 4 no server."""
    from sailplane.client import ApiError, AuthenticationError, ServerUnreachableError

    try:
        yield
    except AuthenticationError as exc:
        if signing_in:
            fail(exc.message, 3)
        again = "sailplane login" + ("" if profile_name == DEFAULT else f" --profile {profile_name}")
        fail(f"your login has expired or was revoked ({exc.message}); run `{again}`", 3)
    except ServerUnreachableError as exc:
        fail(str(exc), 4)
    except ApiError as exc:
        request = f", request {exc.request_id}" if exc.request_id else ""
        fail(f"{exc.message} ({exc.code}, HTTP {exc.status}{request})")


def check_output(output: str) -> str:
    if output not in ("table", "json"):
        fail(f"--output must be 'table' or 'json', not {output!r}", 2)
    return output


# Checked while the command line is parsed, before anything is sent.
OutputOption = Annotated[str, typer.Option("--output", "-o", callback=check_output,
                                           help="'table' (default) or 'json' for scripts.")]


def emit(output: str, data: Any, columns: Sequence[tuple[str, Callable[[Any], Any]]] = (),
         rows: Sequence[Any] | None = None, title: str | None = None) -> None:
    """`data` as JSON, or `rows` (default: `data`) as a table of `columns` (header, value of a row)."""
    if check_output(output) == "json":
        sys.stdout.write(json.dumps(data, indent=None if os.environ.get("SAILPLANE_JSON_COMPACT") else 2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header, overflow="fold")  # IDs are copied from here: folded on a narrow terminal, never cut
    for row in rows if rows is not None else data:
        table.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    Console().print(table)


def by_id(records: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in records or [] if isinstance(r, dict) and "id" in r}


def one_named(rows: Sequence[dict[str, Any]], given: str, what: str, listing: str) -> dict[str, Any]:
    """The one row whose ID or name is `given`: exit 1 when none is, 2 when the name is ambiguous."""
    named = [r for r in rows if given in (r["id"], r.get("name"))]
    if not named:
        fail(f"no {what} with the ID or name {given!r} (see `sailplane {listing} list`)")
    if len(named) > 1:
        fail(f"several {listing} are named {given!r}: give its ID (see `sailplane {listing} list`)", 2)
    return named[0]


def can_open_a_browser() -> bool:
    """A browser the user would see: one named by BROWSER, or a desktop (macOS, Windows, a graphical session).
    Without them Python's webbrowser falls back to text browsers, which would take over a non-interactive run."""
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and sys.stdout.isatty()
