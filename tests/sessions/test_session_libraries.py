"""Workload config libraries: installed with pip from a real package index on loopback and importable
by UDFs, which run inside the session's Sail server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql.functions import udf

from sailplane.compute.local import installed_sail_version
from tests.sessions.helpers import (
    close,
    issue_token,
    open_session,
    org_with_team,
    sail_pids,
    spark_session,
    spark_url,
    wait_for_status,
)
from tests.support.actors import Actor, assert_error
from tests.support.packages import PackageIndex, serve_package_index
from tests.support.server import LiveServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    with serve_package_index(tmp_path_factory.mktemp("index")) as index:
        yield index


def _config(owner: Actor, team: str, name: str, libraries: list[dict[str, Any]]) -> str:
    r = owner.post("/workloads/compute-configs",
                   json={"name": name, "teamId": team, "config": {"sail": {"libraries": libraries}}})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@contextlib.contextmanager
def _session(owner: Actor, team: str, server: LiveServer, **body: Any) -> Iterator[dict[str, Any]]:
    """An open session, closed afterwards with its Sail server gone (sessions outlive a test otherwise)."""
    session = open_session(owner, team, **body)
    try:
        yield session
    finally:
        close(owner, session["id"])
        workload = session.get("workloadId")
        wait_until(lambda: workload not in sail_pids(server), timeout=30)


def _shout_on_sail(owner: Actor, session: dict[str, Any]) -> list[str]:
    """Runs a UDF that imports the test library, on the session's Sail server."""
    with spark_session(spark_url(session, issue_token(owner, session["id"]))) as spark:

        @udf("string")
        def shout(text: str) -> str:
            import sailplane_testlib  # type: ignore[import-not-found]

            return str(sailplane_testlib.shout(text))

        rows = spark.createDataFrame([("hi",), ("sail",)], ["s"]).select(shout("s").alias("v")).collect()
        return [r.v for r in rows]


@pytest.mark.parametrize("kind", ["whl", "pypi", "requirements"])
def test_udf_imports_the_configured_library(compute_api: str, compute_server: LiveServer,
                                            package_index: PackageIndex, kind: str) -> None:
    owner, team = org_with_team(compute_api)
    library = {
        "whl": {"whl": package_index.wheel_url},
        "pypi": {"pypi": {"package": "sailplane-testlib==1.0", "repo": package_index.index_url}},
        "requirements": {"requirements": {
            "source": f"--index-url {package_index.index_url}\nsailplane-testlib>=1.0\n"}},
    }[kind]
    config_id = _config(owner, team, f"with-{kind}", [library])
    with _session(owner, team, compute_server, workloadConfigId=config_id) as session:
        assert sorted(_shout_on_sail(owner, session)) == ["HI!", "SAIL!"]


def test_without_the_library_the_udf_cannot_import_it(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    with (_session(owner, team, compute_server, workloadConfig={"config": {"sail": {}}}) as session,
          pytest.raises(Exception, match="sailplane_testlib")):
        _shout_on_sail(owner, session)


def test_a_library_pip_cannot_install_fails_the_session_with_pips_reason(
    compute_api: str, package_index: PackageIndex
) -> None:
    owner, team = org_with_team(compute_api)
    config_id = _config(owner, team, "broken", [{"pypi": {"package": "no-such-package-anywhere",
                                                         "repo": package_index.index_url}}])
    session = open_session(owner, team, workloadConfigId=config_id)
    failed = wait_for_status(owner, session["id"], "failed", timeout=120)
    assert "pip could not install the libraries" in failed["statusMessage"]
    assert "no-such-package-anywhere" in failed["statusMessage"]


@pytest.mark.parametrize(("field", "value"), [
    ("lakesailImageUri", "public.ecr.aws/lakesail/sail:0.1.0"),
    ("lakesailImageUri", "registry.example.com/custom-sail:latest"),
    ("libraries", [{"whl": "s3://bucket/pkg-1.0-py3-none-any.whl"}]),
    ("libraries", [{"requirements": {"uri": "s3://bucket/requirements.txt"}}]),
])
def test_what_the_local_cluster_cannot_honour_is_refused(compute_api: str, field: str, value: Any) -> None:
    owner, team = org_with_team(compute_api)
    r = owner.post("/workloads/compute-configs",
                   json={"name": "x", "teamId": team, "clusterId": "LOCAL", "config": {"sail": {field: value}}})
    err = assert_error(r, 422)
    assert any(f.startswith(f"config.sail.{field}") for f in err["details"]["fieldErrors"]), err


def test_the_installed_sail_version_is_an_accepted_image(compute_api: str, tmp_path: Path) -> None:
    owner, team = org_with_team(compute_api)
    image = f"public.ecr.aws/lakesail/sail:{installed_sail_version()}"
    r = owner.post("/workloads/compute-configs",
                   json={"name": "pinned", "teamId": team, "config": {"sail": {"lakesailImageUri": image}}})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["sail"]["lakesailImageUri"] == image
