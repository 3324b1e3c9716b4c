"""Job sources from git: clone a repository at a branch, tag or commit with the git CLI.

`checkout()` is blocking (it runs `git` in subprocesses); call it from a thread. The commit it
returns is the run's `snapshotCommit`. Retries of a run pass that commit back as
`SourceConfig.snapshot_commit` so every attempt runs exactly the same code.

The URL is the user's: with a sandbox, git runs confined as the workload user, seeing only the
checkout's parent directory and, for a local repository, that repository (which must lie under an
administrator's source root), so a URL cannot name our files or another job's checkout.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sailplane.compute.sandbox import Mounts, Sandbox, SandboxError, workload_environment

REF_TYPES = ("branch", "tag", "commit")
_SHA_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
_FULL_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# user:password@ in URLs must never reach a log or an error message.
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]+@")
DEFAULT_TIMEOUT = 300.0


class SourceError(RuntimeError):
    """The source could not be checked out (bad URL, unknown reference, git failure, timeout)."""


@dataclass(frozen=True)
class SourceConfig:
    """Where a job's code lives. `ref_type` is 'branch', 'tag', 'commit' or None (the default
    branch when `ref_value` is None, else `ref_value` as a branch or tag, then as a commit)."""

    url: str
    ref_type: str | None = None
    ref_value: str | None = None
    snapshot_commit: str | None = None  # pins the exact commit (retries); wins over the reference

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceConfig:
        """From the API's `sourceConfig` (`{"url", "provider", "reference": {"type", "value"}}`).

        The config's own `snapshotCommit` is not read: it is an output. Pin a commit explicitly
        with `dataclasses.replace(config, snapshot_commit=...)`.
        """
        reference = data.get("reference") or {}
        ref_type = (reference.get("type") or "").strip().lower() or None
        ref_value = (reference.get("value") or "").strip() or None
        return cls(url=str(data.get("url") or "").strip(), ref_type=ref_type, ref_value=ref_value)

    def describe(self) -> str:
        where = redact_url(self.url)
        if self.snapshot_commit:
            return f"{where} at commit {self.snapshot_commit}"
        if self.ref_value:
            return f"{where} at {self.ref_type or 'reference'} {self.ref_value}"
        return f"{where} (default branch)"


def redact_url(url: str) -> str:
    return _USERINFO_RE.sub("***@", url)


def validate(source: SourceConfig) -> None:
    """Reject what git would misread as options or what cannot be a reference (before any work)."""
    if not source.url:
        raise SourceError("sourceConfig.url is empty")
    if source.url.startswith("-") or any(c in source.url for c in "\r\n\0"):
        raise SourceError(f"invalid repository URL {redact_url(source.url)!r}")
    if source.ref_type is not None and source.ref_type not in REF_TYPES:
        raise SourceError(f"unknown reference type {source.ref_type!r}: expected one of {', '.join(REF_TYPES)}")
    if source.ref_type is not None and not source.ref_value:
        raise SourceError(f"reference type {source.ref_type!r} needs a value")
    value = source.ref_value
    if value is not None and (value.startswith("-") or any(c in value for c in " \t\r\n\0~^:?*[\\")):
        raise SourceError(f"invalid reference {value!r}")
    if source.ref_type == "commit" and not _SHA_RE.match(value or ""):
        raise SourceError(f"invalid commit {value!r}: expected a hexadecimal SHA")
    if source.snapshot_commit is not None and not _SHA_RE.match(source.snapshot_commit):
        raise SourceError(f"invalid snapshot commit {source.snapshot_commit!r}")


def checkout(source: SourceConfig, dest: Path, *, log: IO[bytes] | None = None,
             timeout: float = DEFAULT_TIMEOUT, sandbox: Sandbox | None = None) -> str:
    """Clone `source` into `dest` (replaced if it exists) and return the checked-out commit SHA.

    Branches and tags are cloned shallowly; a commit is fetched alone where the server allows it
    (protocol v2 does), else the whole history is fetched. Git's progress and errors go to `log`.
    """
    validate(source)
    git = _Git(dest, log, time.monotonic() + timeout, source, sandbox)
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if sandbox is not None:
        sandbox.own(dest.parent)
    pinned = source.snapshot_commit or (source.ref_value if source.ref_type == "commit" else None)
    if pinned:
        _checkout_commit(git, source, pinned)
    elif source.ref_value is None:
        git.run("clone", "--quiet", "--depth", "1", "--", source.url, str(dest), cwd=dest.parent,
                what="clone")
    else:
        try:
            git.run("clone", "--quiet", "--depth", "1", "--single-branch", "--branch", source.ref_value,
                    "--", source.url, str(dest), cwd=dest.parent, what="clone")
        except SourceError as exc:
            if "not found in upstream" not in str(exc):
                raise
            if source.ref_type is not None or not _SHA_RE.match(source.ref_value):
                raise SourceError(f"{source.ref_type or 'reference'} {source.ref_value!r} not found in "
                                  f"{redact_url(source.url)}") from None
            shutil.rmtree(dest, ignore_errors=True)
            _checkout_commit(git, source, source.ref_value)  # a bare value that looks like a SHA
        else:
            _check_kind(git, source)
    return git.output("rev-parse", "HEAD")


def _check_kind(git: _Git, source: SourceConfig) -> None:
    """`git clone --branch` accepts both branches and tags: hold the reference type to its word."""
    attached = git.returncode("symbolic-ref", "-q", "HEAD") == 0
    if source.ref_type == "branch" and not attached:
        raise SourceError(f"{source.ref_value!r} is a tag, not a branch, in {redact_url(source.url)}")
    if source.ref_type == "tag" and attached:
        raise SourceError(f"{source.ref_value!r} is a branch, not a tag, in {redact_url(source.url)}")


def _checkout_commit(git: _Git, source: SourceConfig, sha: str) -> None:
    git.run("init", "--quiet", str(git.dest), cwd=git.dest.parent, what="init")
    git.run("remote", "add", "origin", source.url, what="configure")
    fetched = False
    if _FULL_SHA_RE.match(sha.lower()):
        try:
            git.run("fetch", "--quiet", "--depth", "1", "origin", sha.lower(), what="fetch")
            fetched = True
        except SourceError as exc:
            if "timed out" in str(exc):
                raise
    if not fetched:  # an abbreviated SHA, or a server that refuses to serve unadvertised commits
        git.run("fetch", "--quiet", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*",
                what="fetch")
    ref = sha.lower() if fetched else f"{sha.lower()}^{{commit}}"
    if git.returncode("rev-parse", "--quiet", "--verify", ref) != 0:
        raise SourceError(f"commit {sha!r} not found in {redact_url(source.url)}")
    git.run("checkout", "--quiet", "--detach", "FETCH_HEAD" if fetched else ref, what="checkout")


class _Git:
    """Runs git with no prompts, C locale, a shared deadline and its own process group."""

    def __init__(self, dest: Path, log: IO[bytes] | None, deadline: float, source: SourceConfig,
                 sandbox: Sandbox | None = None):
        self.dest = dest
        self.log = log
        self.deadline = deadline
        self.source = source
        self.sandbox = sandbox
        self.mounts = Mounts()
        if sandbox is not None:
            try:
                local = sandbox.local_source(source.url)
            except SandboxError as exc:
                raise SourceError(str(exc)) from None
            self.mounts = Mounts(readable=(local,) if local else (), writable=(dest.parent,))
            # A local repository belongs to another user than the workload's (and is read-only in there).
            # Git drops command-line configuration for its local transport, so this goes in a global file.
            dest.parent.mkdir(parents=True, exist_ok=True)
            config = dest.parent / ".gitconfig"
            config.write_text("[safe]\n\tdirectory = *\n")
            self.env = workload_environment({"GIT_CONFIG_GLOBAL": str(config)})
        else:
            self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SAILPLANE_", "SAIL_", "GIT_"))}
        self.env.update({
            "GIT_TERMINAL_PROMPT": "0",  # fail instead of asking for credentials
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
            "LC_ALL": "C",
        })

    def _exec(self, args: tuple[str, ...], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SourceError(f"checking out {self.source.describe()} timed out")
        command = ["git", *args]
        where = cwd or self.dest
        if self.sandbox is not None:
            command = self.sandbox.command(command, cwd=where, mounts=self.mounts)
        proc = subprocess.Popen(
            command, cwd=where, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # git's helpers (remote-https, ssh) too
            proc.communicate()
            raise SourceError(f"checking out {self.source.describe()} timed out") from None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if self.log is not None and err.strip():
            self.log.write(redact_url(err).encode(errors="replace"))
            self.log.flush()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def run(self, *args: str, what: str, cwd: Path | None = None) -> None:
        result = self._exec(args, cwd)
        if result.returncode != 0:
            raise SourceError(f"git {what} of {self.source.describe()} failed: {_git_error(result.stderr)}")

    def returncode(self, *args: str) -> int:
        return self._exec(args, None).returncode

    def output(self, *args: str) -> str:
        result = self._exec(args, None)
        if result.returncode != 0:
            raise SourceError(f"git {args[0]} failed: {_git_error(result.stderr)}")
        return result.stdout.strip()


def _git_error(stderr: str) -> str:
    lines = [line.strip() for line in redact_url(stderr).splitlines() if line.strip()]
    fatal = [line.removeprefix("fatal: ").removeprefix("error: ") for line in lines
             if line.startswith(("fatal:", "error:"))]
    picked = fatal or lines[-3:]
    return "; ".join(picked) or "no error output"
