"""The PySpark lines this machine serves, each in a pinned Python environment of its own.

Sail answers a Spark Connect client according to the PySpark installed next to it: `spark.version`,
the settings a client reads before it sends local data (`spark.sql.session.localRelationSizeLimit`
is `3GB` for 4.1, which a 4.2 client cannot parse) and the PySpark that runs UDFs. So every line a
user may pick (`sparkVersion` in a workload config or a job's `config.lakesail`) has its own virtual
environment with `pysail`, that line's PySpark, pandas below 3 and pyarrow, pinned exactly (transitive
dependencies included) by `locks/spark-<line>.txt`. Sail servers, job drivers and library installs
of a workload run with its line's interpreter.

Each environment lives in `<root>/spark-<line>-<hash>/`, the hash covering the lock file and the
Python version: a changed lock gives a new directory, so an upgrade never alters an environment
that running Sail servers use. It is complete once its stamp file exists (written last), so an
interrupted install is never used and is redone. The root is `SAILPLANE_SPARK_ENVS_DIR`, by
default `spark-envs/` in the control plane's own virtual environment.

`scripts/bootstrap.sh` installs the default line (`all` for the test command); another line is
installed the first time a workload asks for it, under a lock shared with the other server
processes of this machine (`python -m sailplane.compute.environments install --all` does it ahead).

Only the standard library here: bootstrap runs this module right after installing the control plane.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SparkVersion = Literal["4.2", "4.1", "4.0", "3.5"]
STAMP = ".sailplane-installed"
LOCKS = Path(__file__).resolve().parent / "locks"
_OUTPUT_TAIL = 3000


@dataclass(frozen=True)
class SparkLine:
    """A PySpark line: the distribution that provides `pyspark` in it and what its lock is made from."""

    name: str  # "4.2"
    pyspark: str  # the distribution whose version must start with the line ("pyspark-client", "pyspark")
    requirements: tuple[str, ...]  # the top-level requirements the lock file is generated from
    lock: Path
    # The version `pyspark` must have (default: the line's name); the notebook environment checks marimo's.
    version: str | None = None
    title: str | None = None  # what messages call it (default: "Spark <line>")
    directory: str | None = None  # its directory's name before the hash (default: "spark-<line>")

    @property
    def label(self) -> str:
        return self.title or f"Spark {self.name}"

    @property
    def dirname(self) -> str:
        return self.directory or f"spark-{self.name}"


def _line(name: str, pyspark: str, *requirements: str) -> SparkLine:
    return SparkLine(name, pyspark, requirements, LOCKS / f"spark-{name}.txt")


# Newest first; the first is the default. pandas stays below 3 and pyarrow at the version pysail's
# own tests use (pysail 0.7.2: pyspark-client 4.2.0, pandas<3, pyarrow 24). PySpark 3.5 has no
# lightweight client and needs numpy below 2; pyspark[connect] 3.5.7 is what Sail's docs and CI name.
LINES: dict[str, SparkLine] = {
    line.name: line
    for line in (
        _line("4.2", "pyspark-client", "pysail==0.7.2", "pyspark-client==4.2.0", "pandas==2.3.3", "pyarrow==24.0.0"),
        _line("4.1", "pyspark-client", "pysail==0.7.2", "pyspark-client==4.1.3", "pandas==2.3.3", "pyarrow==24.0.0"),
        _line("4.0", "pyspark-client", "pysail==0.7.2", "pyspark-client==4.0.4", "pandas==2.3.3", "pyarrow==24.0.0"),
        _line("3.5", "pyspark", "pysail==0.7.2", "pyspark[connect]==3.5.7", "pandas==2.3.3", "pyarrow==24.0.0",
              "numpy<2"),
    )
}
DEFAULT_LINE = next(iter(LINES))

# The environment marimo notebook servers (and their kernels) run in: marimo with the default line's
# PySpark client (the kernel talks to the notebook's Sail session over Spark Connect), kept apart from
# the control plane's own pins. Not a line a user picks: `notebook_environment()` serves it.
NOTEBOOK = "notebook"
NOTEBOOK_LINE = SparkLine(NOTEBOOK, "marimo", ("marimo==0.25.2", "pyspark-client==4.2.0", "pandas==2.3.3",
                                               "pyarrow==24.0.0"), LOCKS / "notebook.txt", version="0.25.2",
                          title="notebook (marimo)", directory="notebook")


class SparkEnvError(RuntimeError):
    """An environment could not be installed; the message says which step failed and its last words."""


def default_root() -> Path:
    raw = os.environ.get("SAILPLANE_SPARK_ENVS_DIR")
    return Path(raw).expanduser().resolve() if raw else Path(sys.prefix).resolve() / "spark-envs"


def default_notebook_root() -> Path:
    """Where the notebook environment lives: SAILPLANE_NOTEBOOK_ENVS_DIR, else with the Spark lines'."""
    raw = os.environ.get("SAILPLANE_NOTEBOOK_ENVS_DIR")
    return Path(raw).expanduser().resolve() if raw else default_root()


def notebook_environment(root: Path | None = None, *, timeout: float = 1800.0) -> SparkEnvironments:
    """The notebook environment (its only line is `NOTEBOOK`): `.env()` names it, `.ensure()` installs it."""
    return SparkEnvironments(root or default_notebook_root(), lines={NOTEBOOK: NOTEBOOK_LINE}, timeout=timeout)


@dataclass(frozen=True)
class SparkEnv:
    """One line's environment on this machine (which may not be installed yet)."""

    line: SparkLine
    path: Path

    @property
    def name(self) -> str:
        """`spark-4.2-<hash>`: also what library installs for it are keyed by."""
        return self.path.name

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def installed(self) -> bool:
        return (self.path / STAMP).is_file()


class SparkEnvironments:
    """The environments of every line under one root. Cheap to create: nothing is read until used."""

    def __init__(self, root: Path | None = None, *, lines: Mapping[str, SparkLine] | None = None,
                 timeout: float = 1800.0) -> None:
        self.root = (root or default_root()).resolve()
        self.lines = dict(lines or LINES)
        self.default = next(iter(self.lines))
        self.timeout = timeout
        self._envs: dict[str, SparkEnv] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def env(self, line: str | None = None) -> SparkEnv:
        """The environment of `line` (None: the default line); ValueError for a line we do not serve."""
        name = line or self.default
        found = self._envs.get(name)
        if found is None:
            spec = self.lines.get(name)
            if spec is None:
                raise ValueError(f"unknown Spark version {name!r}; this server has {', '.join(self.lines)}")
            digest = hashlib.sha256(spec.lock.read_bytes() + sys.implementation.cache_tag.encode()).hexdigest()
            found = self._envs[name] = SparkEnv(spec, self.root / f"{spec.dirname}-{digest[:12]}")
        return found

    def all(self) -> list[SparkEnv]:
        return [self.env(name) for name in self.lines]

    def roots(self) -> tuple[Path, ...]:
        """Every line's environment directory, installed or not (what a sandbox must show)."""
        return tuple(env.path for env in self.all())

    async def ensure(self, line: str | None = None) -> SparkEnv:
        """The installed environment of `line`, installing it first when this is its first use."""
        env = self.env(line)
        if env.installed:
            return env
        async with self._locks.setdefault(env.name, asyncio.Lock()):
            if not env.installed:
                await asyncio.to_thread(self.install, env.line.name)
        return env

    def install(self, line: str | None = None, *, log: bool = False) -> SparkEnv:
        """Install `line` unless it is installed (blocking; safe against other processes doing the same)."""
        env = self.env(line)
        if env.installed:
            return env
        self.root.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.root / f".{env.line.dirname}.lock"):
            if not env.installed:
                if log:
                    print(f"Installing the {env.line.label} environment into {env.path} ...", flush=True)
                started = time.monotonic()
                _install(env, self.timeout)
                if log:
                    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
        return env


def _pip_environment() -> dict[str, str]:
    """Our environment without our own settings (the administrator's PIP_* settings apply)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SAILPLANE_", "PYTHON"))}


def _run(what: str, argv: Sequence[str], timeout: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_pip_environment(),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SparkEnvError(f"{what} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-_OUTPUT_TAIL:]
        raise SparkEnvError(f"{what} failed (exit code {done.returncode}): {tail}")
    return done.stdout


def _install(env: SparkEnv, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    shutil.rmtree(env.path, ignore_errors=True)  # an interrupted earlier attempt
    label = f"installing the {env.line.label} environment"
    try:
        # The interpreter of our own environment's base: every line runs the same Python as the control plane.
        # Our pip installs into it (`--python`), quicker than bootstrapping one first; the lock's pip pin
        # gives the environment its own, which installs workloads' libraries later.
        venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(env.path)
        pip = [sys.executable, "-m", "pip", "--python", env.python, "--no-input", "--disable-pip-version-check"]
        # Exactly the lock: --no-deps, so nothing it does not name gets in; `pip check` then proves it complete.
        _run(label, [*pip, "install", "--quiet", "--no-deps", "-r", str(env.line.lock)],
             max(1.0, deadline - time.monotonic()))
        _run(f"{label} (pip check)", [*pip, "check"], 120)
        version = _run(f"{label} (version check)", [
            env.python, "-c", f"import importlib.metadata as m; print(m.version({env.line.pyspark!r}))"], 120).strip()
        wanted = env.line.version or env.line.name
        if version != wanted and not version.startswith(wanted + "."):
            raise SparkEnvError(f"{label}: {env.line.pyspark} {version} is not of the {env.line.label} line")
        _readable(env.path)  # workloads run as another user
        (env.path / STAMP).write_text(json.dumps({"line": env.line.name, env.line.pyspark: version}) + "\n")
    except BaseException:
        shutil.rmtree(env.path, ignore_errors=True)
        raise


def _readable(root: Path) -> None:
    """World-readable files and traversable directories, whatever the umask was."""
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""]:
            path = Path(directory) / name if name else Path(directory)
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(mode):
                continue
            wanted = mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
            if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
                wanted |= stat.S_IXGRP | stat.S_IXOTH
            if wanted != mode:
                path.chmod(stat.S_IMODE(wanted))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- regenerating a lock file (maintainers; needs the package index) ------------------------------


def lock(line: SparkLine, timeout: float = 1800.0) -> str:
    """Resolve the line's top-level requirements in a scratch environment and freeze it."""
    with tempfile.TemporaryDirectory(prefix=f"sailplane-lock-{line.name}-") as tmp:
        path = Path(tmp) / "env"
        venv.EnvBuilder(with_pip=True, symlinks=True).create(path)
        python = str(path / "bin" / "python")
        pip = importlib.metadata.version("pip")  # the control plane's own, pinned by scripts/bootstrap.sh
        _run("upgrading pip", [python, "-m", "pip", "install", "--quiet", f"pip=={pip}"], timeout)
        _run("resolving", [python, "-m", "pip", "install", "--quiet", *line.requirements], timeout)
        frozen = _run("freezing", [python, "-m", "pip", "freeze", "--all"], 120)
    pins = sorted((p for p in frozen.splitlines() if p.strip() and not p.lower().startswith("setuptools==")),
                  key=lambda p: (not p.lower().startswith("pip=="), p.lower()))
    header = [
        f"# The {line.label} environment of Sail servers, job drivers and library installs: every package,",
        "# pinned. Generated by `python -m sailplane.compute.environments lock "
        f"{line.name}` from: {' '.join(line.requirements)}",
    ]
    return "\n".join(header + pins) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sailplane.compute.environments",
                                     description="The pinned Python environments of the PySpark lines.")
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install", help="install lines that are not installed yet (default: the default line; "
                                              f"`{NOTEBOOK}`: the notebook environment)")
    install.add_argument("lines", nargs="*", metavar="LINE")
    install.add_argument("--all", action="store_true", help="every line")
    regenerate = sub.add_parser("lock", help="regenerate the lock files of lines (needs the package index)")
    regenerate.add_argument("lines", nargs="+", metavar="LINE")
    show = sub.add_parser("show", help="each line's directory and whether it is installed")
    show.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    envs = SparkEnvironments()
    if args.command == "install":
        wanted = list(LINES) if args.all else (args.lines or [envs.default])
        unknown = [name for name in wanted if name not in LINES and name != NOTEBOOK]
        if unknown:
            parser.error(f"unknown line(s) {', '.join(unknown)}; the lines are {', '.join(LINES)} (and {NOTEBOOK})")
        try:
            for name in wanted:
                (notebook_environment() if name == NOTEBOOK else envs).install(name, log=True)
        except SparkEnvError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "lock":
        for name in args.lines:
            line = NOTEBOOK_LINE if name == NOTEBOOK else LINES.get(name)
            if line is None:
                parser.error(f"unknown line {name}; the lines are {', '.join(LINES)} (and {NOTEBOOK})")
            line.lock.write_text(lock(line))
            print(f"wrote {line.lock}")
        return 0
    rows = [{"line": e.line.name, "default": e.line.name == envs.default, "path": str(e.path),
             "installed": e.installed} for e in envs.all()]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['line']}{' (default)' if row['default'] else ''}: {row['path']} "
                  f"{'installed' if row['installed'] else 'not installed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
