"""`sailplane serve` refuses a bad configuration with one line on stderr that names the cause, and a
non-zero exit; the traceback only at debug level. Each case runs the real command as a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port

SAILPLANE = [sys.executable, "-m", "sailplane.cli"]
HINT = "(details: --log-level debug or SAILPLANE_DEBUG=1)"


def serve(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")}
    full.update(env)
    full.setdefault("SAILPLANE_GATEWAY_PORT", str(free_port()))
    return subprocess.run([*SAILPLANE, "serve", "--port", str(free_port()), *args], env=full,
                          capture_output=True, text=True, timeout=timeout, check=False)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line: not a traceback, and the only line of stderr that is not an INFO log."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sailplane: error: ") and lines[0].endswith(HINT), lines[0]
    return lines[0]


def test_a_mysql_url_is_an_unsupported_database(tmp_path: Path) -> None:
    line = error_line(serve({"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_DATABASE_URL": "mysql://u:pw@db/x"}))
    assert "unsupported database 'mysql'" in line and "MySQLdb" not in line
    assert "pw" not in line.replace("password", "")


@pytest.mark.parametrize("url", ["postgresql://u:secret@db:notaport/x", "::::"])
def test_an_unparseable_url(tmp_path: Path, url: str) -> None:
    line = error_line(serve({"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_DATABASE_URL": url}))
    assert "SAILPLANE_DATABASE_URL cannot be parsed" in line and "secret" not in line


def test_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql://u:secret@127.0.0.1:{free_port()}/x"
    line = error_line(serve({"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_DATABASE_URL": url}))
    assert "the database postgresql+psycopg://u:***@127.0.0.1" in line and "Connection refused" in line
    assert "secret" not in line


def test_a_data_directory_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("not a directory")
    line = error_line(serve({"SAILPLANE_DATA_DIR": str(path)}))
    assert f"the data directory {path} (SAILPLANE_DATA_DIR) is not a directory" in line


@contextlib.contextmanager
def read_only_mount(path: Path) -> Iterator[None]:
    """A read-only filesystem at `path` (a file permission would not stop root)."""
    path.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a read-only filesystem here: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_data_directory(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with read_only_mount(path):
        line = error_line(serve({"SAILPLANE_DATA_DIR": str(path)}))
    assert f"the data directory {path} (SAILPLANE_DATA_DIR) is not writable: Read-only file system" in line


def test_a_taken_gateway_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line(serve({"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_GATEWAY_PORT": str(port)}))
    assert f"the Spark Connect gateway cannot listen on 127.0.0.1:{port}: Address already in use" in line


def test_no_bubblewrap(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    line = error_line(serve({"SAILPLANE_DATA_DIR": str(tmp_path / "data"), "PATH": str(bare)}))
    assert "bubblewrap (bwrap) is not installed" in line and "SAILPLANE_WORKLOAD_SANDBOX=off" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="the workload user is needed only when the server is root")
def test_no_workload_user(tmp_path: Path) -> None:
    line = error_line(serve({"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_WORKLOAD_USER": "no-such-user-x"}))
    assert "the workload user 'no-such-user-x' does not exist" in line


def test_the_traceback_at_debug_level(tmp_path: Path) -> None:
    result = serve({"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_DATABASE_URL": "mysql://u@db/x"},
                   "--log-level", "debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "StartupError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("sailplane: error: unsupported database 'mysql'")


def test_migrate_says_it_in_one_line_too(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAILPLANE_")}
    env.update({"SAILPLANE_DATA_DIR": str(tmp_path), "SAILPLANE_DATABASE_URL": "mysql://u@db/x"})
    result = subprocess.run([*SAILPLANE, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "unsupported database 'mysql'" in error_line(result)

