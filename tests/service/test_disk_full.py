"""A full disk is reported as a full disk: writes answer 507 `storage_full` (not 503 "busy, retry
shortly"), the log says the disk is full, reads keep working, and writes work again once space is freed.

For real: the database lives on a small tmpfs that the test fills up. On SQLite that is the data
directory (the database file is in it); on PostgreSQL it is a tablespace holding a database of its own
on the test server (which runs on this machine)."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND, make_settings
from tests.support.actors import Actor, signup
from tests.support.server import LiveServer
from tests.support.world import create_team

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")


@contextlib.contextmanager
def small_filesystem(path: Path, size: str, owner: str | None = None) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700"
    if owner is not None:
        entry = pwd.getpwnam(owner)
        options += f",uid={entry.pw_uid},gid={entry.pw_gid}"
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr!r}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem has no space left (down to the last 512-byte block)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


@contextlib.contextmanager
def database_on(fs: Path, database_url: str) -> Iterator[tuple[str, Path]]:
    """(database URL, data directory) with the database on the small filesystem `fs`."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{fs / 'sailplane.db'}", fs
        return
    url = make_url(database_url)
    if url.host not in ("127.0.0.1", "localhost") or os.environ.get("SAILPLANE_TEST_POSTGRES_URL"):
        pytest.skip("the PostgreSQL server is not this machine's throwaway one")
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE TABLESPACE small_disk LOCATION '{fs}'")
        conn.execute("CREATE DATABASE disk_full_test TABLESPACE small_disk")
    try:
        yield url.set(database="disk_full_test").render_as_string(hide_password=False), fs
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS disk_full_test WITH (FORCE)")
            conn.execute("DROP TABLESPACE IF EXISTS small_disk")


def write_until_refused(owner: Actor, attempts: int = 300) -> tuple[int, dict[str, object]]:
    """Create teams until one is refused (pages already allocated may still take a few)."""
    for i in range(attempts):
        r = owner.post("/org/teams", json={"name": f"team {i} " + "x" * 200, "description": "y" * 1000})
        if r.status_code != 201:
            return r.status_code, r.json()
    raise AssertionError(f"{attempts} writes succeeded on a full disk")


def test_a_full_disk_is_reported_as_such(tmp_path: Path, database_url: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    owner_name = "postgres" if BACKEND == "postgresql" else None
    # Outside pytest's private temporary directory, which the PostgreSQL server's user cannot enter.
    mount_point = Path(tempfile.mkdtemp(prefix="sailplane-small-disk-"))
    mount_point.chmod(0o755)
    try:
        with small_filesystem(mount_point, "16m", owner_name) as fs, database_on(fs, database_url) as (url, data):
            data_dir = data if BACKEND == "sqlite" else tmp_path / "data"
            live = LiveServer(make_settings(data_dir, url, None, compute_enabled=False))
            live.start()
            try:
                api = f"{live.url}/api/v1"
                owner = signup(api)
                team = create_team(owner, "before")
                filler = fill(fs)
                with caplog.at_level(logging.WARNING, logger="sailplane.errors"):
                    status, body = write_until_refused(owner)
                assert status == 507, body
                error = body["error"]
                assert isinstance(error, dict) and error["code"] == "storage_full"
                assert "storage is full" in error["message"] and error["details"]["retryable"] is False
                logged = [r.getMessage() for r in caplog.records if r.name == "sailplane.errors"]
                assert any("disk is full" in m for m in logged), logged
                assert not any("database unavailable" in m or "busy" in m for m in logged), logged
                if BACKEND == "sqlite":
                    assert any("database or disk is full" in m for m in logged), logged
                else:
                    assert any("No space left on device" in m for m in logged), logged
                # Reads keep working while the disk is full.
                assert owner.get(f"/org/teams/{team}").status_code == 200
                assert owner.get("/me").status_code == 200
                # Once space is freed, writes work again without a restart.
                filler.unlink()
                assert owner.post("/org/teams", json={"name": "after"}).status_code == 201
            finally:
                live.stop()
    finally:
        with contextlib.suppress(OSError):
            mount_point.rmdir()
