"""The PySpark lines' environments: exact lock files, installing a line once (also from two processes at
once, also after an interrupted install), and libraries installed per line within its pins."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sailplane.compute import environments
from sailplane.compute.environments import DEFAULT_LINE, LINES, SparkEnv, SparkEnvError, SparkEnvironments, SparkLine
from sailplane.compute.libraries import Library, LibraryInstaller, LibraryInstallError
from sailplane.compute.local import installed_sail_version
from tests.support.packages import PackageIndex, serve_package_index


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.strip().partition("==")
            assert sep and version, f"{lock.name}: {line!r} is not an exact pin"
            found[name.lower().replace("_", "-")] = version
    return found


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_every_line_is_pinned_exactly_around_the_same_sail() -> None:
    assert max(LINES, key=version) == DEFAULT_LINE, "the default is the newest line"
    for line in LINES.values():
        pinned = pins(line.lock)
        assert pinned["pysail"] == installed_sail_version(), line.lock
        assert pinned[line.pyspark].startswith(line.name + "."), line.lock
        assert version(pinned["pandas"]) < (3,), "Sail's UDF support is tested with pandas below 3"
        assert {"pip", "pyarrow", "numpy", "grpcio", "protobuf"} <= set(pinned), line.lock
        for requirement in line.requirements:  # what the lock was generated from is in it
            name = requirement.split("[")[0].split("=")[0].split("<")[0].lower()
            assert name in pinned, (line.lock, requirement)


def test_the_installed_environments_are_exactly_their_locks() -> None:
    """scripts/bootstrap.sh dev installed every line; nothing in them that the lock does not name."""
    for env in SparkEnvironments().all():
        assert env.installed, f"{env.path}: run scripts/bootstrap.sh dev"
        frozen = subprocess.run([env.python, "-m", "pip", "freeze", "--all", "--disable-pip-version-check"],
                                capture_output=True, text=True, check=True).stdout
        got = {n.lower().replace("_", "-"): v for n, _, v in (p.partition("==") for p in frozen.split())}
        got.pop("setuptools", None)  # the virtual environment's own, not a dependency
        assert got == pins(env.line.lock), env.path


# --- installing a line: a fake one, from a package index on loopback ------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    more = [("fake-pyspark", "9.9.1"), ("pyarrow", "99.0")]
    with serve_package_index(tmp_path_factory.mktemp("index"), more=more) as served:
        yield served


def fake(tmp_path: Path, lock_text: str, name: str = "9.9") -> SparkEnvironments:
    tmp_path.mkdir(parents=True, exist_ok=True)
    lock = tmp_path / f"spark-{name}.txt"
    lock.write_text(lock_text)
    line = SparkLine(name, "fake-pyspark", ("fake-pyspark==9.9.1",), lock)
    return SparkEnvironments(tmp_path / "envs", lines={name: line})


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, index: PackageIndex) -> list[str]:
    monkeypatch.setenv("PIP_INDEX_URL", index.index_url)
    calls: list[str] = []
    real = environments._install

    def install(env: SparkEnv, timeout: float) -> None:
        calls.append(env.name)
        real(env, timeout)

    monkeypatch.setattr(environments, "_install", install)
    return calls


def imports(env: SparkEnv, *modules: str) -> bool:
    code = "; ".join(f"import {m}" for m in modules)
    return subprocess.run([env.python, "-c", code], capture_output=True).returncode == 0


def test_a_line_is_installed_once_on_first_use_also_by_two_processes(tmp_path: Path, counted: list[str]) -> None:
    envs = fake(tmp_path, "fake-pyspark==9.9.1\nsailplane-testlib==1.0\n")
    env = envs.env()
    assert env.path.parent == tmp_path / "envs" and env.name.startswith("spark-9.9-") and not env.installed
    assert envs.roots() == (env.path,)
    # Another server process (its own SparkEnvironments) installs the same line at the same moment.
    other = threading.Thread(target=SparkEnvironments(envs.root, lines=envs.lines).install, args=("9.9",))
    other.start()

    async def first_uses() -> list[SparkEnv]:
        return list(await asyncio.gather(envs.ensure(), envs.ensure("9.9")))

    assert asyncio.run(first_uses()) == [env, env]
    other.join(120)
    assert counted == [env.name] and env.installed
    assert imports(env, "fake_pyspark", "sailplane_testlib")
    assert asyncio.run(envs.ensure()) == env and counted == [env.name]  # installed: nothing to do


def test_an_interrupted_install_is_redone_and_a_new_lock_is_a_new_environment(tmp_path: Path,
                                                                              counted: list[str]) -> None:
    envs = fake(tmp_path, "fake-pyspark==9.9.1\n")
    env = envs.env()
    env.path.mkdir(parents=True)
    (env.path / "half-written").write_text("no stamp: not usable")
    assert not env.installed
    assert envs.install() == env and env.installed and not (env.path / "half-written").exists()
    upgraded = fake(tmp_path, "fake-pyspark==9.9.1\nsailplane-testlib==1.0\n")
    assert upgraded.env().path != env.path and not upgraded.env().installed  # the old one stays for its users
    assert env.installed


def test_a_failed_install_leaves_nothing_and_says_why(tmp_path: Path, counted: list[str]) -> None:
    envs = fake(tmp_path, "fake-pyspark==9.9.1\nno-such-package-anywhere==1.0\n")
    with pytest.raises(SparkEnvError, match="no-such-package-anywhere"):
        envs.install()
    assert not envs.env().path.exists()
    wrong = fake(tmp_path / "wrong", "fake-pyspark==9.9.1\n", name="9.8")  # a lock of another line
    with pytest.raises(SparkEnvError, match="not of the Spark 9.8 line"):
        asyncio.run(wrong.ensure())
    assert not wrong.env().path.exists()
    with pytest.raises(ValueError, match="unknown Spark version '3.4'"):
        SparkEnvironments().env("3.4")


# --- libraries: per line, within its pins ---------------------------------------------------------


def test_libraries_are_installed_per_line_within_its_pins(tmp_path: Path, index: PackageIndex) -> None:
    envs = SparkEnvironments()
    installer = LibraryInstaller(tmp_path / "libraries")
    testlib = [Library("pypi", "sailplane-testlib==1.0", repo=index.index_url)]
    newest, oldest = envs.env(DEFAULT_LINE), envs.env(list(LINES)[-1])
    for_newest = asyncio.run(installer.install(testlib, newest))
    for_oldest = asyncio.run(installer.install(testlib, oldest))
    assert for_newest is not None and for_oldest is not None and for_newest != for_oldest
    assert asyncio.run(installer.install(testlib, newest)) == for_newest  # installed once
    # The index offers pyarrow 99 only; every line pins its pyarrow, so pip refuses instead of
    # putting another pyarrow in front of the one Sail and PySpark were pinned with.
    with pytest.raises(LibraryInstallError, match=r"constraint.*pyarrow==24\.0\.0|pyarrow==24\.0\.0.*constraint"):
        asyncio.run(installer.install([Library("pypi", "pyarrow==99.0", repo=index.index_url)], newest))
