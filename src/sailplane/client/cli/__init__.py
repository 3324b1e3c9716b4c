"""The user commands of `sailplane` (login, orgs, use, teams, sessions, jobs, notebooks, configs, queries), added
to the server's typer app by `register`. They speak to a server through `sailplane.client` and import it only when
they run."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from sailplane.client.cli import auth
    from sailplane.client.cli.configs import configs
    from sailplane.client.cli.jobs import jobs
    from sailplane.client.cli.notebooks import notebooks
    from sailplane.client.cli.queries import queries
    from sailplane.client.cli.sessions import sessions
    from sailplane.client.cli.teams import teams

    app.command()(auth.login)
    app.command()(auth.logout)
    app.command()(auth.orgs)
    app.command()(auth.use)
    app.add_typer(teams, name="teams")
    app.add_typer(sessions, name="sessions")
    app.add_typer(jobs, name="jobs")
    app.add_typer(notebooks, name="notebooks")
    app.add_typer(configs, name="configs")
    app.add_typer(queries, name="queries")
