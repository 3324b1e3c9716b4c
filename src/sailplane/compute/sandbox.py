"""Confinement of user code on this machine: every workload process runs in a bubblewrap sandbox.

What a user submits (SQL that Sail runs, UDFs, job code, library install scripts, git checkouts)
must not reach the control plane's data directory (database, secret key, signing key, outbox),
other workloads' directories or the host's private files. Each sandboxed process gets:

- new PID, IPC, UTS and cgroup namespaces: it sees only its own processes, and when the sandbox's
  init goes, everything it started goes with it (even what left the process group);
- a filesystem of its own: the system (`/usr`, a few files of `/etc`) and the Python environments
  (the control plane's, where the job driver lives, and each Spark line's, see
  `compute.environments`) read-only, a private `/tmp` and `/dev/shm` (writable, like on any host),
  and only the directories the caller names (its work directory, its catalogs' storage, its
  libraries); nothing else of the host, the data directory included;
- when the server runs as root, an unprivileged system user (`setpriv` inside the sandbox drops
  to it with no capabilities and `no_new_privs`), so even a path that were visible by mistake is
  guarded by file permissions; a server that is not root runs workloads in a user namespace with
  its own uid (the filesystem view is the boundary then);
- an environment built from an allow-list (locale, proxies, time zone), never the server's.

The network is shared with the host (Sail must reach object stores, and the gateway reaches Sail
on loopback), so a workload can open connections to loopback services; see README.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sailplane
from sailplane.compute.environments import SparkEnvironments
from sailplane.config import Settings

log = logging.getLogger(__name__)

# Files of /etc a workload needs (name resolution, TLS roots, time zone, users, dynamic linker,
# pip's site configuration); the rest of /etc (credentials of other services) stays hidden.
_ETC_FILES = (
    "passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "host.conf", "gai.conf", "timezone", "ssl",
    "ca-certificates", "ca-certificates.conf", "pki", "alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
    "mime.types", "protocols", "services", "os-release", "debian_version", "pip.conf", "xdg/pip", "gitconfig",
    "localtime",
)
# Top-level system directories: bound read-only, or recreated as the symlinks they are (merged /usr).
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Host environment variables a workload may inherit; everything else (our secrets, cloud
# credentials, database URLs) never reaches it.
_ENV_NAMES = {
    "PATH", "LANG", "LANGUAGE", "TZ", "RUST_LOG", "RUST_BACKTRACE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
}
_ENV_PREFIXES = ("LC_",)
SANDBOX_HOME = "/tmp"


class SandboxError(RuntimeError):
    """The sandbox cannot be used as configured (missing bubblewrap or user, unsafe paths)."""


@dataclass(frozen=True)
class WorkloadUser:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Mounts:
    """What one sandboxed process may see besides the system: read-only and read-write paths."""

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()


def workload_environment(extra: Mapping[str, str] | None = None, *, pip: bool = False) -> dict[str, str]:
    """The allow-listed part of our environment (plus pip's settings for installs) and `extra`."""
    env = {k: v for k, v in os.environ.items() if k in _ENV_NAMES or k.startswith(_ENV_PREFIXES)
           or (pip and k.startswith("PIP_"))}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = SANDBOX_HOME
    env.update(extra or {})
    return env


def _python_roots() -> list[Path]:
    """The interpreter, its virtual environment and our package: all a workload's Python needs."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent}
    package = Path(sailplane.__file__).resolve().parent
    if not any(package.is_relative_to(root) for root in roots):
        roots.add(package.parent)  # an editable install: the source tree's `src`
    return sorted(roots)


def pip_paths(env: Mapping[str, str]) -> list[Path]:
    """Local paths named by the administrator's PIP_* settings (find-links, certificates, constraints)."""
    found: list[Path] = []
    for key, value in env.items():
        if not key.startswith("PIP_"):
            continue
        for item in value.split():
            item = item.removeprefix("file://")
            if item.startswith("/") and os.path.exists(item):
                found.append(Path(item).resolve())
    return found


@dataclass(frozen=True)
class Sandbox:
    """Builds the bubblewrap command line that confines one workload process."""

    bwrap: str
    user: WorkloadUser | None
    python_roots: tuple[Path, ...]
    private: tuple[Path, ...] = ()  # must never be visible (the data directory)
    source_roots: tuple[Path, ...] = field(default=())  # where local git repositories of jobs may live

    @classmethod
    def create(cls, *, private: Iterable[Path], user_name: str | None,
               source_roots: Iterable[Path] = (), environments: Iterable[Path] = ()) -> Sandbox:
        """A sandbox for this host, or SandboxError saying what to install or configure.

        `environments` are further Python environments workloads run in (each Spark line's, whether
        installed yet or not): readable like our own, and never holding the data directory."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError("bubblewrap (bwrap) is not installed: install the Debian package 'bubblewrap' "
                               "(scripts/bootstrap.sh does), or set SAILPLANE_WORKLOAD_SANDBOX=off to run user "
                               "code unconfined")
        user = None
        if os.geteuid() == 0:
            if not user_name:
                raise SandboxError("the server runs as root, so workloads need an unprivileged user: set "
                                   "SAILPLANE_WORKLOAD_USER (scripts/bootstrap.sh creates 'sailplane-workload')")
            try:
                entry = pwd.getpwnam(user_name)
            except KeyError:
                raise SandboxError(
                    f"the workload user {user_name!r} does not exist: create it with `useradd --system "
                    f"--no-create-home --shell /usr/sbin/nologin --user-group {user_name}` (scripts/bootstrap.sh "
                    "does) or set SAILPLANE_WORKLOAD_USER to another unprivileged user") from None
            if entry.pw_uid == 0:
                raise SandboxError(f"the workload user {user_name!r} is root")
            user = WorkloadUser(user_name, entry.pw_uid, entry.pw_gid)
        roots = sorted({*_python_roots(), *(Path(p).resolve() for p in environments)})
        sandbox = cls(bwrap=bwrap, user=user, python_roots=tuple(roots),
                      private=tuple(Path(p).resolve() for p in private),
                      source_roots=tuple(Path(p).resolve() for p in source_roots))
        sandbox._check_private()
        return sandbox

    def _check_private(self) -> None:
        for secret in self.private:
            for root in (*self.python_roots, Path("/usr")):
                if secret.is_relative_to(root):
                    raise SandboxError(f"the data directory {secret} overlaps {root}, which workloads can read: "
                                       "move the data directory (SAILPLANE_DATA_DIR) elsewhere")
            for root in self.source_roots:  # other jobs' checkouts live in the data directory
                if secret.is_relative_to(root) or root.is_relative_to(secret):
                    raise SandboxError(f"the source root {root} (SAILPLANE_SOURCE_ROOTS) overlaps the data "
                                       f"directory {secret}")

    def local_source(self, url: str) -> Path | None:
        """The local repository a git URL names, if it is local (an absolute path or file://);
        SandboxError when it lies outside every source root."""
        if not url.startswith(("/", "file://")):
            return None
        path = Path(url.removeprefix("file://")).resolve()
        if not any(path.is_relative_to(root) for root in self.source_roots):
            raise SandboxError(f"the local repository {url} is not under a source root: an administrator lists "
                               "the directories jobs may clone from in SAILPLANE_SOURCE_ROOTS")
        return path

    # -- ownership ---------------------------------------------------------------------------------

    def own(self, *paths: Path, recursive: bool = False) -> None:
        """Give directories we created for a workload to its user, so it can write there."""
        if self.user is None:
            return
        for path in paths:
            _chown(path, self.user)
            if recursive and path.is_dir():
                for root, dirs, files in os.walk(path):
                    for name in (*dirs, *files):
                        _chown(Path(root) / name, self.user)

    # -- the command -------------------------------------------------------------------------------

    def command(self, argv: Sequence[str], *, cwd: Path, mounts: Mounts = Mounts(),
                unset_env: Sequence[str] = ()) -> list[str]:
        """`argv` wrapped so it runs confined, in `cwd` (which must be one of the writable mounts)."""
        visible = [*mounts.readable, *mounts.writable]
        for path in visible:
            self._refuse_private(path)
        args = [self.bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--hostname", "sailplane-workload"]
        if self.user is None:
            args.append("--unshare-user")  # without root: a user namespace mapped to our own uid
        # A private /tmp (the workload's HOME) and /dev/shm (POSIX semaphores: multiprocessing locks, which
        # PySpark 3.5's client takes at import), writable by the workload user like on any host.
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777",
                 "--tmpfs", "/tmp", "--perms", "0755", "--dir", "/var", "--perms", "1777",
                 "--tmpfs", "/var/tmp", "--perms", "0755", "--dir", "/etc"]
        made = {Path("/"), Path("/tmp"), Path("/var"), Path("/var/tmp"), Path("/etc")}
        for name in _SYSTEM_DIRS:
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
            made.add(path)
        for name in _ETC_FILES:
            path = Path("/etc") / name
            if path.is_symlink() and name == "localtime":
                args += ["--symlink", os.readlink(path), str(path)]  # time zone crates read the link's name
            elif path.exists():
                args += self._dirs_for(path, made) + ["--ro-bind", str(path), str(path)]
        # A Spark line's environment that is not installed yet has nothing to show (and bwrap cannot bind it).
        readable = [*(p for p in self.python_roots if p.exists()), *(p.resolve() for p in mounts.readable)]
        binds = [(p, "--ro-bind") for p in readable if not _under_system(p)]
        binds += [(p.resolve(), "--bind") for p in mounts.writable]
        for path, how in sorted(binds, key=lambda b: len(b[0].parts)):  # parents before children
            args += self._dirs_for(path, made) + [how, str(path), str(path)]
            made.add(path)
        args += ["--chdir", str(cwd)]
        for name in unset_env:
            args += ["--unsetenv", name]
        args.append("--")
        if self.user is not None:
            args += ["setpriv", f"--reuid={self.user.uid}", f"--regid={self.user.gid}", "--clear-groups",
                     "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
        return args + list(argv)

    def _refuse_private(self, path: Path) -> None:
        resolved = path.resolve()
        for secret in self.private:
            if secret.is_relative_to(resolved):
                raise SandboxError(f"refusing to show {resolved} to a workload: it contains {secret}")

    @staticmethod
    def _dirs_for(path: Path, made: set[Path]) -> list[str]:
        """World-traversable parent directories (bubblewrap would make them 0700 as root)."""
        args: list[str] = []
        for parent in reversed(path.parents):
            if parent not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        return args

    # -- self-test ---------------------------------------------------------------------------------

    def probe(self, python: str = sys.executable, timeout: float = 60.0) -> None:
        """Start Python in a sandbox once, so a broken setup fails the server's start, not a user's job:
        `python` (a Spark line's) imports Sail and PySpark and can read the job driver."""
        driver = Path(sailplane.__file__).resolve().parent / "workloads" / "runs" / "driver.py"
        code = f"import pysail, pyspark; open({str(driver)!r}).close()"
        argv = self.command([python, "-c", code], cwd=Path("/tmp"))
        try:
            result = subprocess.run(argv, env=workload_environment(), capture_output=True, text=True,
                                    timeout=timeout, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxError(f"the workload sandbox does not start: {exc}") from exc
        if result.returncode != 0:
            who = f"user {self.user.name!r}" if self.user else "a user namespace"
            raise SandboxError(
                f"Python does not start in the workload sandbox as {who} (exit code {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-1500:]}. The Python environment "
                f"({', '.join(map(str, self.python_roots))}) must be readable by that user, and unprivileged "
                "user namespaces must be allowed when the server is not root")


def workload_sandbox(settings: Settings, environments: SparkEnvironments,
                     more_environments: Iterable[Path] = ()) -> Sandbox | None:
    """The server's sandbox as configured, checked by starting the default Spark line's Python in it
    once (None: turned off). That line must be installed. `more_environments`: further Python
    environments workloads run in (the notebook environment)."""
    mode = settings.workload_sandbox
    if mode == "off":
        log.warning("SAILPLANE_WORKLOAD_SANDBOX=off: user code runs unconfined, as the server's own user, and "
                    "can read the data directory (secrets, database); use this only on a single-user machine")
        return None
    if mode != "sandbox":
        raise SandboxError(f"SAILPLANE_WORKLOAD_SANDBOX must be 'sandbox' or 'off', not {mode!r}")
    private = [settings.data_dir]
    for path in (settings.gateway_signing_key, settings.gateway_tls_key, _sqlite_path(settings.database_url)):
        if path is not None:
            private.append(path)
    sandbox = Sandbox.create(private=private, user_name=settings.workload_user, source_roots=settings.source_roots,
                             environments=(*environments.roots(), *more_environments))
    sandbox.probe(environments.env().python)
    return sandbox


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def exit_status(code: int) -> int:
    """bubblewrap reports a child killed by signal N as 128 + N; give it back as -N like Popen does."""
    if code > 128 and code - 128 < 65:
        return -(code - 128)
    return code


def _under_system(path: Path) -> bool:
    return path == Path("/usr") or path.is_relative_to("/usr")


def _chown(path: Path, user: WorkloadUser) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
