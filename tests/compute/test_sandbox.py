"""The workload sandbox: what it refuses to set up, and a sandboxed Sail server's whole life (its
processes all go when it stops, also after a restart of the control plane)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sailplane.compute.backend import InstanceSpec
from sailplane.compute.local import LocalSailBackend, pid_of
from sailplane.compute.processes import group_alive
from sailplane.compute.sandbox import Mounts, Sandbox, SandboxError, exit_status, workload_environment
from tests.support.processes import group_members

WORKLOAD_USER = "sailplane-workload"


def make(tmp_path: Path, **kwargs: object) -> Sandbox:
    return Sandbox.create(private=[tmp_path / "data"], user_name=WORKLOAD_USER, **kwargs)  # type: ignore[arg-type]




def test_refuses_a_data_directory_that_workloads_could_read(tmp_path: Path) -> None:
    inside_python = Path(sys.prefix) / "sailplane-data"
    with pytest.raises(SandboxError, match="overlaps"):
        Sandbox.create(private=[inside_python], user_name=WORKLOAD_USER)
    with pytest.raises(SandboxError, match="SAILPLANE_SOURCE_ROOTS"):
        make(tmp_path, source_roots=[tmp_path])  # the root holds the data directory
    with pytest.raises(SandboxError, match="SAILPLANE_SOURCE_ROOTS"):
        make(tmp_path, source_roots=[tmp_path / "data" / "runs"])  # other jobs' checkouts
    sandbox = make(tmp_path, source_roots=[tmp_path / "repos"])
    with pytest.raises(SandboxError, match="refusing to show"):
        sandbox.command(["true"], cwd=tmp_path, mounts=Mounts(readable=(tmp_path,)))
    # A PySpark line's environment is shown to workloads too: the data directory must not be in one.
    with pytest.raises(SandboxError, match="overlaps"):
        make(tmp_path, environments=[tmp_path])


def test_a_line_environment_is_shown_once_it_is_installed(tmp_path: Path) -> None:
    later = tmp_path / "envs" / "spark-9.9-not-yet"
    sandbox = make(tmp_path, environments=[later])
    assert later in sandbox.python_roots
    assert str(later) not in sandbox.command(["true"], cwd=tmp_path)  # bwrap cannot bind what is not there
    later.mkdir(parents=True)
    command = sandbox.command(["true"], cwd=tmp_path)
    assert command[command.index(str(later)) - 1] == "--ro-bind"


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root server switches workloads to another user")
def test_a_root_server_needs_an_existing_unprivileged_user(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="useradd"):
        Sandbox.create(private=[tmp_path / "data"], user_name="no-such-user-here")
    with pytest.raises(SandboxError, match="is root"):
        Sandbox.create(private=[tmp_path / "data"], user_name="root")


def test_local_git_sources_only_under_a_root(tmp_path: Path) -> None:
    sandbox = make(tmp_path, source_roots=[tmp_path / "repos"])
    assert sandbox.local_source("https://example.com/repo.git") is None
    assert sandbox.local_source("git@example.com:team/repo.git") is None
    assert sandbox.local_source(str(tmp_path / "repos" / "a")) == tmp_path / "repos" / "a"
    assert sandbox.local_source(f"file://{tmp_path / 'repos' / 'b'}") == tmp_path / "repos" / "b"
    for outside in (str(tmp_path / "data"), f"{tmp_path}/repos/../data", "file:///etc"):
        with pytest.raises(SandboxError, match="not under a source root"):
            sandbox.local_source(outside)


def test_exit_status_of_a_signalled_workload() -> None:
    assert exit_status(0) == 0 and exit_status(3) == 3 and exit_status(128) == 128
    assert exit_status(137) == -9 and exit_status(143) == -15


def test_a_workload_sees_only_what_it_is_given(tmp_path: Path) -> None:
    sandbox = make(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.key").write_text("top secret")
    work = tmp_path / "work"
    work.mkdir()
    sandbox.own(work)
    secret = str(data / "secret.key")
    # Its private /tmp (HOME) and /dev/shm are writable: multiprocessing's locks (PySpark 3.5's client) live there.
    code = (f"import os, multiprocessing; print(os.getuid(), sorted(os.listdir('/')), os.path.exists({secret!r}), "
            "os.path.exists('/home')); open('/tmp/mine', 'w').write('x'); multiprocessing.Lock(); "
            "open('written', 'w').write('ok')")
    command = sandbox.command([sys.executable, "-c", code], cwd=work, mounts=Mounts(writable=(work,)))
    result = subprocess.run(command, env=workload_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    uid, rest = result.stdout.split(" ", 1)
    assert int(uid) == (sandbox.user.uid if sandbox.user else os.geteuid())
    assert "False False" in rest  # neither the secret nor /home exists in there
    assert (work / "written").read_text() == "ok"


def test_a_sandboxed_sail_server_goes_entirely_when_stopped(tmp_path: Path) -> None:
    sandbox = make(tmp_path)
    backend = LocalSailBackend(tmp_path / "data", sandbox=sandbox)
    storage = tmp_path / "warehouse"

    async def scenario() -> None:
        handle = await backend.start(InstanceSpec("SANDBOXED1", storage=(str(storage),)), timeout=60)
        members = group_members(pid_of(handle))
        assert len(members) >= 3  # the launcher, the sandbox's init and Sail
        assert storage.is_dir() and (backend.work_dir("SANDBOXED1") / "output").is_dir()
        # A restarted control plane adopts it and stops it: nothing of it is left either.
        again = LocalSailBackend(tmp_path / "data", sandbox=sandbox)
        assert await again.find(handle)
        assert await again.stop_orphans(()) == ["SANDBOXED1"]
        assert not group_alive(pid_of(handle)) and group_members(pid_of(handle)) == []
        await backend.stop(handle, grace=2)

    try:
        asyncio.run(scenario())
    finally:
        leftovers = backend.scan()
        asyncio.run(backend.stop_orphans(()))  # a failed assertion above must not leave Sail running
    assert leftovers == []
