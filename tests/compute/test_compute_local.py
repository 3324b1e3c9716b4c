"""LocalSailBackend against real Sail processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from sailplane.compute.backend import ComputeBackend, ComputeError, InstanceHandle, InstanceSpec, InstanceStartError
from sailplane.compute.local import (
    INSTANCE_MARKER,
    LocalSailBackend,
    pid_of,
    sail_env_name,
    sail_settings_env,
)
from sailplane.compute.processes import process_environ, process_running

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


@contextlib.contextmanager
def spark_session(handle: InstanceHandle) -> Iterator[SparkSession]:
    spark = SparkSession.builder.remote(f"sc://localhost:{handle.port}").create()
    try:
        yield spark
    finally:
        spark.stop()


def test_settings_env() -> None:
    assert sail_env_name("catalog.list") == "SAIL_CATALOG__LIST"
    assert sail_env_name("SAIL_EXECUTION__BATCH_SIZE") == "SAIL_EXECUTION__BATCH_SIZE"
    assert sail_settings_env(InstanceSpec("A")) == {"SAIL_MODE": "local"}
    cluster = sail_settings_env(
        InstanceSpec("A", execution_mode="cluster", workers=3, settings={"execution.batch_size": "1024"})
    )
    assert cluster == {
        "SAIL_MODE": "local-cluster",
        "SAIL_CLUSTER__WORKER_INITIAL_COUNT": "3",
        "SAIL_CLUSTER__WORKER_MAX_COUNT": "3",
        "SAIL_EXECUTION__BATCH_SIZE": "1024",
    }
    with pytest.raises(ComputeError, match="at least one worker"):
        sail_settings_env(InstanceSpec("A", execution_mode="cluster", workers=0))


def test_start_health_stop(backend: LocalSailBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(backend, ComputeBackend)
    monkeypatch.setenv("SAILPLANE_SECRET_KEY", "must-not-leak")
    spec = InstanceSpec("INST1", extra_env={"MY_VAR": "1"}, settings={"execution.batch_size": "4096"})

    async def scenario() -> InstanceHandle:
        handle = await backend.start(spec)
        assert handle.host == "127.0.0.1" and handle.port > 0
        assert await backend.check_health(handle)
        assert await backend.find(_handle("INST1", pid_of(handle)))
        assert not await backend.find(_handle("OTHER", pid_of(handle)))
        pid, start = handle.ref.split(":")  # the local backend's ref: pid and start time
        assert await backend.find(_handle("INST1", int(pid), int(start)))
        assert not await backend.find(_handle("INST1", int(pid), int(start) + 1))  # a reused pid: another process
        assert backend.running(handle) and not backend.running(_handle("INST1", int(pid), int(start) + 1))
        env = process_environ(pid_of(handle))
        assert env[INSTANCE_MARKER] == "INST1"
        assert env["MY_VAR"] == "1" and env["SAIL_MODE"] == "local"
        assert env["SAIL_EXECUTION__BATCH_SIZE"] == "4096"
        assert "SAILPLANE_SECRET_KEY" not in env
        assert os.getpgid(pid_of(handle)) == pid_of(handle)  # its own process group
        with pytest.raises(ComputeError, match="already running"):
            await backend.start(spec)
        with spark_session(handle) as spark:
            assert spark.sql("SELECT 40 + 2 AS x").collect()[0]["x"] == 42
        await backend.stop(handle, grace=10)
        assert not process_running(pid_of(handle))
        assert not await backend.find(_handle("INST1", pid_of(handle)))
        assert not await backend.check_health(handle)
        await backend.stop(handle)  # idempotent
        return handle

    handle = asyncio.run(scenario())
    log = backend.log_path("INST1").read_text()
    assert "starting instance INST1" in log and f":{handle.port}" in log


def _handle(instance_id: str, pid: int, start: int | None = None) -> InstanceHandle:
    """A persisted handle as the controller rebuilds it from its row, for any pid (without a start
    time: a row migrated from the pid column)."""
    ref = str(pid) if start is None else f"{pid}:{start}"
    return InstanceHandle(instance_id=instance_id, ref=ref, host="127.0.0.1", port=1, started_at=datetime.now(UTC))


def test_find_is_false_for_dead_or_foreign_pids(backend: LocalSailBackend) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    assert not asyncio.run(backend.find(_handle("INST1", dead_pid)))
    assert not asyncio.run(backend.find(_handle("INST1", os.getpid())))  # alive, but not a Sail instance
    assert not asyncio.run(backend.find(_handle("INST1", 0)))
    garbage = InstanceHandle(instance_id="INST1", ref="pod/elsewhere", host="h", port=1, started_at=datetime.now(UTC))
    assert not asyncio.run(backend.find(garbage)) and not backend.running(garbage)


def test_start_failure_reports_log_tail(backend: LocalSailBackend) -> None:
    spec = InstanceSpec("BAD1", settings={"mode": "no-such-mode"})
    with pytest.raises(InstanceStartError, match="exited with code") as info:
        asyncio.run(backend.start(spec))
    assert "no-such-mode" in str(info.value)  # Sail's own complaint, from the log


def test_start_timeout_kills_the_process(backend: LocalSailBackend, tmp_path: Path) -> None:
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\necho 'pretending to start'\nexec sleep 300\n")
    hang.chmod(0o755)
    slow = LocalSailBackend(backend.data_dir, python=str(hang))
    with pytest.raises(InstanceStartError, match="did not become ready") as info:
        asyncio.run(slow.start(InstanceSpec("SLOW1"), timeout=1.0))
    assert "pretending to start" in str(info.value)
    assert slow.scan() == []


ORPHAN_MAKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from sailplane.compute.backend import InstanceSpec
    from sailplane.compute.local import LocalSailBackend, pid_of
    handle = asyncio.run(LocalSailBackend(sys.argv[1]).start(InstanceSpec(sys.argv[2])))
    print(json.dumps({"pid": pid_of(handle), "ref": handle.ref, "port": handle.port}))
    """
)


def test_adopt_and_stop_orphans_after_a_restart(backend: LocalSailBackend) -> None:
    """A control plane that died leaves Sail running; the next one adopts it or stops it."""
    out = subprocess.run(
        [sys.executable, "-c", ORPHAN_MAKER, str(backend.data_dir), "ORPHAN1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    started = json.loads(out.stdout.strip().splitlines()[-1])
    pid = started["pid"]

    async def scenario() -> None:
        assert await backend.find(_handle("ORPHAN1", pid))
        assert await backend.find(replace(_handle("ORPHAN1", pid), ref=started["ref"]))
        assert backend.scan() == [("ORPHAN1", pid)]
        # A backend with another data directory does not touch it.
        stranger = LocalSailBackend(backend.data_dir.parent / "elsewhere")
        assert await stranger.stop_orphans(()) == []
        assert await backend.stop_orphans({"ORPHAN1"}) == []
        assert process_running(pid)
        assert await backend.stop_orphans({"SOMETHING_ELSE"}) == ["ORPHAN1"]
        assert not process_running(pid)
        assert not await backend.find(_handle("ORPHAN1", pid))

    asyncio.run(scenario())


def test_cluster_mode_with_two_workers(backend: LocalSailBackend) -> None:
    spec = InstanceSpec("CLUSTER1", execution_mode="cluster", workers=2)

    async def start() -> InstanceHandle:
        return await backend.start(spec)

    handle = asyncio.run(start())
    try:
        assert process_environ(pid_of(handle))["SAIL_MODE"] == "local-cluster"
        with spark_session(handle) as spark:
            df = spark.range(0, 10_000, 1, 8).selectExpr("id % 10 AS k", "id").groupBy("k").count()
            assert sorted((r["k"], r["count"]) for r in df.collect()) == [(k, 1000) for k in range(10)]
    finally:
        asyncio.run(backend.stop(handle))
    assert not process_running(pid_of(handle))
