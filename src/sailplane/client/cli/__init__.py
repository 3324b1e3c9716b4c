"""The user commands of `sailplane` (login, orgs, use, teams, sessions, jobs, notebooks, configs, queries), added
to the server's typer app by `register` and its command group `Group`. They speak to a server through
`sailplane.client` and import it only when they run; a command group's module is imported only when one of its
commands runs (or help or completion lists them)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

# The user command groups, each the Typer of the same name in the module of that name (sailplane.client.cli.jobs'
# `jobs`), in the order help lists them.
USER_GROUPS = ("teams", "sessions", "jobs", "notebooks", "configs", "queries")


class Group(TyperGroup):
    """The `sailplane` command group: typer's, made to start fast. A user command pays only for itself:

    * The user command groups are built on first use, so `sailplane jobs list` neither imports the other groups'
      modules nor builds their commands (typer builds every command of every group before running one). Help,
      completion and typer's suggestions for a mistyped name see every group: the names are known up front.
    * Parameters build their pydantic coercion only for a value that needs one. typer (0.2x) checks each
      parameter's value (the help and completion options' too) through a pydantic TypeAdapter it builds on the
      parameter's first use, even when the value is None (an option not given) or a `str` for a `str` parameter:
      importing pydantic and building the adapters costs ~100 ms, five times a whole `curl` of an API page, paid by
      every command for its `--profile` and `--output` alone. Those two cases need no adapter: typer's own
      pass-through coercion answers them as the adapter would (None stays None, or `()` for a multi-value
      parameter; a `str` stays itself). Any other value (an int, a float, a Path, a list, a choice, a `parser`'s)
      goes through typer's pydantic coercion as before. Should typer's internals move, parameters keep typer's
      coercion: commands stay correct, only slower (tests/client/test_cli_startup.py notices)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands, USER_GROUPS)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _defer_coercion()
        return super().main(*args, **kwargs)


class _Commands(MutableMapping[str, Any]):
    """A group's commands, in order: those typer built, then the user command groups, each built when first looked
    up (listing the names builds none)."""

    def __init__(self, built: MutableMapping[str, Any], lazy: tuple[str, ...]) -> None:
        self.built = dict(built)
        self.names = [*self.built, *(name for name in lazy if name not in self.built)]

    def __getitem__(self, name: str) -> Any:
        if name not in self.built:
            if name not in self.names:
                raise KeyError(name)
            self.built[name] = _user_group(name)
        return self.built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self.names:
            self.names.append(name)
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self.names:
            raise KeyError(name)
        self.names.remove(name)
        self.built.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.names))

    def __len__(self) -> int:
        return len(self.names)


def _user_group(name: str) -> Any:
    """The click group of a user command group, built by typer exactly as `app.add_typer(group, name=name)` would."""
    from typer.main import get_group

    holder = typer.Typer()
    holder.add_typer(getattr(importlib.import_module(f"sailplane.client.cli.{name}"), name), name=name)
    return get_group(holder).commands[name]


def _defer_coercion() -> None:
    """Puts `Deferred` in place of the coercion typer builds for a parameter on its first value
    (`typer.core.build_runtime_param`), once per process."""
    try:
        import typer.core
        from typer._coercion import PassThroughRuntimeParam
    except ImportError:  # another typer: its coercion stays
        return
    found = getattr(typer.core, "build_runtime_param", None)
    if found is None or getattr(found, "deferred", False):
        return
    build: Callable[[Any], Any] = found

    class Deferred:
        """A parameter's coercion: typer's pass-through for None and for a `str` parameter's `str`, typer's own
        (pydantic) built on the first other value."""

        def __init__(self, descriptor: Any) -> None:
            self.descriptor = descriptor
            self.pass_through = PassThroughRuntimeParam(parameter_info=descriptor.parameter_info,
                                                        annotation=descriptor.annotation)
            self.built: Any = None

        def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
            if value is None or (self.descriptor.annotation is str and isinstance(value, str)):
                return self.pass_through.coerce(value, param=param, ctx=ctx)
            if self.built is None:
                self.built = build(self.descriptor)
            return self.built.coerce(value, param=param, ctx=ctx)

    def deferred(descriptor: Any) -> Any:
        if descriptor.file_annotation is not None or getattr(descriptor.parameter_info, "parser", None) is not None:
            return build(descriptor)  # files are opened, parsers called: typer's own from the start
        return Deferred(descriptor)

    deferred.deferred = True  # type: ignore[attr-defined]
    typer.core.build_runtime_param = deferred  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    """The user commands that are not in a group; `Group` (the app's `cls`) adds the groups (`USER_GROUPS`)."""
    from sailplane.client.cli import auth

    app.command()(auth.login)
    app.command()(auth.logout)
    app.command()(auth.orgs)
    app.command()(auth.use)
