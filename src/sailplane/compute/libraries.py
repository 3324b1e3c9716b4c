"""Python libraries of a workload (`config.sail.libraries`, `config.lakesail.libraries`) on this machine.

Each distinct list of libraries is installed once per Spark line environment (see
`compute.environments`), with that environment's pip and within its pins (its lock file is a pip
constraint, so `pandas>=2.2` stays at the line's pandas instead of pulling pandas 3 in front of it),
into its own directory under `<data>/libraries/<digest>/`, which Sail servers and job drivers then get
on `PYTHONPATH`: UDFs run inside the Sail server, so that is where a package must be importable.
Directories are complete or absent (installed under a temporary name and renamed), so a crash
mid-install leaves nothing that looks usable, and concurrent starts of the same list (also from
other server processes) install once.

Install scripts are user code: with a sandbox, pip runs confined as the workload user (only its
staging directory writable, the administrator's PIP_* settings and the paths they name readable),
and pip itself fetches wheel and requirements URLs, so the control plane never fetches a URL a
user gave it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import httpx

from sailplane.compute.environments import SparkEnv
from sailplane.compute.sandbox import Mounts, Sandbox, pip_paths, workload_environment

log = logging.getLogger(__name__)

PYPI = "https://pypi.org/simple"
_MAX_DOWNLOAD = 512 * 1024 * 1024
_OUTPUT_TAIL = 3000


class LibraryInstallError(RuntimeError):
    """The libraries could not be installed; the message says which step failed and pip's last words."""


@dataclass(frozen=True)
class Library:
    """One entry of a `libraries` list, as the API accepts it."""

    kind: Literal["pypi", "requirements", "whl"]
    value: str  # a requirement (pypi), requirements.txt text or URL (requirements), a wheel URL (whl)
    repo: str | None = None  # the index of a pypi requirement
    is_uri: bool = False  # requirements given by URL

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> Library:
        """From the validated JSON shape: {pypi: {package, repo}} | {requirements: {source | uri}} | {whl}."""
        if entry.get("pypi"):
            return cls("pypi", entry["pypi"]["package"], repo=entry["pypi"].get("repo"))
        if entry.get("requirements"):
            req = entry["requirements"]
            return cls("requirements", req.get("uri") or req["source"], is_uri=req.get("uri") is not None)
        return cls("whl", entry["whl"])


def libraries_from_api(entries: Sequence[Mapping[str, Any]] | None) -> tuple[Library, ...]:
    return tuple(Library.from_api(e) for e in entries or ())


def digest(libraries: Sequence[Library], environment: str = "") -> str:
    """The key of a list installed for one Spark line environment (`SparkEnv.name`): the same list for
    another line (another Python environment, other pins) is another directory."""
    canonical = json.dumps([environment, [[lib.kind, lib.value, lib.repo, lib.is_uri] for lib in libraries]])
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class LibraryInstaller:
    """Installs library lists into content-addressed directories under `root`."""

    def __init__(self, root: Path, *, timeout: float = 900.0, sandbox: Sandbox | None = None):
        self.root = root
        self.timeout = timeout
        self.sandbox = sandbox
        self._locks: dict[str, asyncio.Lock] = {}

    async def install(self, libraries: Sequence[Library], env: SparkEnv) -> Path | None:
        """The directory to put on PYTHONPATH of `env`'s Python (None when there is nothing to install)."""
        if not libraries:
            return None
        key = digest(libraries, env.name)
        target = self.root / key
        if target.is_dir():
            return target
        async with self._locks.setdefault(key, asyncio.Lock()):
            self.root.mkdir(parents=True, exist_ok=True)
            async with _file_lock(self.root / f".{key}.lock"):  # other server processes on this data directory
                if not target.is_dir():
                    await self._install_into(libraries, target, env)
        return target

    async def _install_into(self, libraries: Sequence[Library], target: Path, env: SparkEnv) -> None:
        work = self.root / f".{target.name}.{uuid.uuid4().hex[:8]}"
        try:
            downloads = work / "downloads"
            downloads.mkdir(parents=True)
            args = await self._pip_args(libraries, downloads)
            site = work / "site"
            await self._pip(env, ["install", "--target", str(site), "-c", str(env.line.lock), *args], work)
            site.mkdir(exist_ok=True)  # pip creates it; an empty list of requirements might not
            os.rename(site, target)
            log.info("installed %d libraries for %s into %s", len(libraries), env.name, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _pip_args(self, libraries: Sequence[Library], downloads: Path) -> list[str]:
        """pip has one index per run: the first repo named is the index, others are extra indexes."""
        args: list[str] = []
        repos = list(dict.fromkeys(lib.repo for lib in libraries if lib.kind == "pypi" and lib.repo))
        if repos:
            args += ["--index-url", repos[0]]
            for repo in repos[1:]:
                args += ["--extra-index-url", repo]
        for n, lib in enumerate(libraries):
            if lib.kind == "pypi":
                args.append(lib.value)
            elif lib.kind == "whl" and self.sandbox is not None:
                args.append(_fetchable(lib.value))  # pip fetches it, inside the sandbox
            elif lib.kind == "whl":
                args.append(str(await _download(lib.value, downloads / f"{n}", keep_name=True)))
            elif lib.is_uri and self.sandbox is not None:
                args += ["-r", _fetchable(lib.value)]
            elif lib.is_uri:
                args += ["-r", str(await _download(lib.value, downloads / f"{n}", keep_name=False))]
            else:
                path = downloads / f"requirements-{n}.txt"
                path.write_text(lib.value)
                args += ["-r", str(path)]
        return args

    async def _pip(self, spark: SparkEnv, args: list[str], work: Path) -> None:
        command = [spark.python, "-m", "pip", "--no-input", "--disable-pip-version-check", "--no-color", *args]
        # The administrator's pip configuration (PIP_INDEX_URL, a mirror) applies; our secrets do not go along.
        if self.sandbox is not None:
            env = workload_environment(pip=True)
            self.sandbox.own(work, recursive=True)
            mounts = Mounts(readable=(*pip_paths(env), spark.line.lock), writable=(work,))
            command = self.sandbox.command([*command[:3], "--no-cache-dir", *command[3:]], cwd=work, mounts=mounts)
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")}
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()
            raise LibraryInstallError(f"installing the libraries took longer than {self.timeout:.0f} s") from None
        if proc.returncode != 0:
            tail = output.decode(errors="replace").strip()[-_OUTPUT_TAIL:]
            raise LibraryInstallError(f"pip could not install the libraries (for {spark.line.label}, within the "
                                      f"versions its environment pins: {spark.line.lock.name}): {tail}")


def _fetchable(url: str) -> str:
    """A URL pip may fetch: http(s) only (s3:// needs a cloud connection's credentials)."""
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise LibraryInstallError(
            f"{url}: the local compute backend fetches libraries over http(s) only; {scheme}:// is not supported")
    return url


async def _download(url: str, directory: Path, *, keep_name: bool) -> Path:
    """Fetch a wheel or requirements file (http/https). s3:// needs a cloud connection's credentials."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise LibraryInstallError(
            f"{url}: the local compute backend fetches libraries over http(s) only; {parsed.scheme}:// is not supported"
        )
    directory.mkdir(parents=True, exist_ok=True)
    name = Path(unquote(parsed.path)).name if keep_name else "requirements.txt"
    if not name or name in (".", ".."):
        raise LibraryInstallError(f"{url}: no file name in the URL")
    path = directory / name
    size = 0
    try:
        async with httpx.AsyncClient(timeout=60, follow_redirects=True) as client, client.stream("GET", url) as r:
            if r.status_code != 200:
                raise LibraryInstallError(f"{url}: HTTP {r.status_code}")
            with path.open("wb") as f:
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > _MAX_DOWNLOAD:
                        raise LibraryInstallError(f"{url}: larger than {_MAX_DOWNLOAD // 2**20} MiB")
                    f.write(chunk)
    except httpx.HTTPError as exc:
        raise LibraryInstallError(f"{url}: {exc}") from exc
    return path


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive lock between processes, waited for without blocking the event loop."""
    with path.open("a") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
