"""Starting and stopping notebooks for real: a Sail session of the notebook's owner and a marimo server in the
workload sandbox, reached with its access token; the source marimo wrote saved at stop; failures, timeouts,
delete and ping. Each test leaves no marimo server behind (the fixtures check)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from sailplane.compute.local_notebooks import LocalNotebookBackend
from sailplane.compute.nodes import NodeLock
from sailplane.compute.notebook_servers import NotebookServerSpec
from sailplane.compute.processes import process_environ
from sailplane.kit.crypto import Encryptor
from sailplane.workloads.notebooks.template import TEMPLATE
from tests.notebooks.conftest import assert_no_marimo_left
from tests.notebooks.helpers import db_rows, make_config, make_notebook, notebook_of
from tests.sessions.conftest import assert_no_sail_left, compute_settings
from tests.sessions.helpers import describe, org_with_team, sail_pids, spark_session
from tests.support.actors import Actor, assert_error
from tests.support.packages import PackageIndex, serve_package_index
from tests.support.server import LiveServer
from tests.support.waiting import wait_until
from tests.support.world import add_to_team, create_member

pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

SECRET = "kernel-Secret-7Yz"
EXTRA_ENV = {"sail": {"extraEnv": {"PLAIN": "as-is", "TOKEN": {"type": "secret", "value": SECRET}}}}


@pytest.fixture(scope="module", autouse=True)
def _no_marimo_left_on_the_compute_node(compute_server: LiveServer) -> Any:
    """The sessions' compute node outlives this module: no marimo server of it may be left (even when a
    test failed half-way)."""
    yield
    assert_no_marimo_left(compute_server.settings.data_dir)


@pytest.fixture(scope="module")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve_package_index(tmp_path_factory.mktemp("index")) as index:
        yield index


def _notebook(actor: Actor, team: str, **body: Any) -> dict[str, Any]:
    config = body.pop("config", None)
    config_id = make_config(actor, team, **config) if config else make_config(actor, team)
    return notebook_of(make_notebook(actor, config_id, **body))


def _get(actor: Actor, notebook_id: str) -> dict[str, Any]:
    r = actor.get(f"/workloads/notebooks/{notebook_id}")
    assert r.status_code == 200, r.text
    return notebook_of(r.json())


def _wait(actor: Actor, notebook_id: str, *statuses: str, timeout: float = 90.0) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(lambda: (n := _get(actor, notebook_id))["status"] in statuses and n,
                                       timeout=timeout, interval=0.1)
    return found


def _start(actor: Actor, notebook_id: str) -> dict[str, Any]:
    r = actor.post(f"/workloads/notebooks/{notebook_id}/start")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "starting" and body["id"] == notebook_id
    return body


def _stop(actor: Actor, notebook_id: str) -> dict[str, Any]:
    r = actor.post(f"/workloads/notebooks/{notebook_id}/stop")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "stopping"
    return _wait(actor, notebook_id, "stopped", "failed")


def _row(server: LiveServer, notebook_id: str) -> dict[str, Any]:
    [row] = db_rows(server.settings.database_url, "SELECT * FROM notebooks WHERE id = :id", id=notebook_id)
    return row


def _marimo_pid(server: LiveServer, notebook_id: str) -> int | None:
    return dict(LocalNotebookBackend(server.settings.data_dir).scan()).get(notebook_id)


def test_start_runs_marimo_with_a_real_sail_session_and_stop_saves_the_source(
        compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    notebook = _notebook(owner, team, config=EXTRA_ENV)
    nid = notebook["id"]
    started = _start(owner, nid)
    assert set(started) >= {"id", "status", "sessionId", "lastActiveAt"}
    # Starting again while it starts (or runs) is a conflict naming the state.
    err = assert_error(owner.post(f"/workloads/notebooks/{nid}/start"), 409, "notebook_not_stopped")
    assert "starting" in err["message"] or "running" in err["message"]

    running = _wait(owner, nid, "running", "failed")
    assert running["status"] == "running", running["statusMessage"]
    assert running["lastActiveAt"] is not None and running["statusMessage"] is None
    err = assert_error(owner.post(f"/workloads/notebooks/{nid}/start"), 409, "notebook_not_stopped")
    assert "running" in err["message"]

    # Its session is a real, open Sail session of the owner, for this notebook.
    session = describe(owner, running["sessionId"])
    assert session["status"] in ("pending", "active") and session["notebookId"] == nid

    # marimo answers on its host:port under /notebooks/<id> only with its access token.
    row = _row(compute_server, nid)
    assert row["node"] and row["server_ref"] and row["started_at"] is not None
    token = Encryptor(compute_server.settings.secret_key).decrypt(row["server_secret"])
    assert token not in json.dumps(_get(owner, nid))
    base = f"http://{row['server_host']}:{row['server_port']}/notebooks/{nid}/"
    anonymous = httpx.get(base)
    assert anonymous.status_code in (401, 303) and "login" in anonymous.headers.get("location", "login")
    assert httpx.get(base, headers={"Authorization": "Bearer wrong"}).status_code in (401, 303)
    assert httpx.get(base, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    # The kernel's environment: SPARK_REMOTE through the gateway with a session token, and the config's extraEnv.
    pid = _marimo_pid(compute_server, nid)
    assert pid is not None
    env = process_environ(pid)
    assert (env["PLAIN"], env["TOKEN"]) == ("as-is", SECRET)
    remote = env["SPARK_REMOTE"]
    assert remote.startswith("sc://") and ";token=" in remote
    # A browser's connection (as the proxy makes it) opens a kernel, which runs the template's cells: its
    # Spark session on SPARK_REMOTE runs a query on the notebook's Sail session, which becomes active.
    assert describe(owner, running["sessionId"])["status"] == "pending"
    address, auth = f"{row['server_host']}:{row['server_port']}", {"Authorization": f"Bearer {token}"}
    page = httpx.get(f"{base}", headers=auth).text
    server_token = re.search(r'"serverToken"\s*:\s*"([^"]+)"', page)
    assert server_token is not None
    with connect(f"ws://{address}/notebooks/{nid}/ws?session_id=s_test", additional_headers=auth,
                 open_timeout=10) as ws:
        assert "kernel-ready" in str(ws.recv(timeout=30))
        r = httpx.post(f"{base}api/kernel/instantiate", json={"objectIds": [], "values": [], "autoRun": True},
                       headers={**auth, "Marimo-Session-Id": "s_test", "Marimo-Server-Token": server_token[1]})
        assert r.status_code == 200, r.text
        assert wait_until(lambda: describe(owner, running["sessionId"])["status"] == "active", timeout=60)
    with spark_session(remote) as spark:  # the kernel's URL reaches the notebook's live Sail session
        assert spark.sql("SELECT 40 + 2").collect()[0][0] == 42

    # Stop saves what marimo wrote to its file (a revision of the old source), then stops everything.
    work_file = Path(compute_server.settings.data_dir) / "notebooks" / nid / "notebook.py"
    original = work_file.read_text()
    edited = original.replace("40 + 2", "6 * 7")
    assert edited != original
    work_file.write_text(edited)
    stopped = _stop(owner, nid)
    assert stopped["status"] == "stopped", stopped["statusMessage"]
    assert stopped["sessionId"] is None
    assert owner.get(f"/workloads/notebooks/{nid}/source").text == edited
    revisions = owner.get(f"/workloads/notebooks/{nid}/source/revisions").json()
    assert revisions["total"] == 1
    assert describe(owner, running["sessionId"])["status"] == "closed"
    assert _marimo_pid(compute_server, nid) is None
    row = _row(compute_server, nid)
    assert row["server_ref"] is None and row["server_secret"] is None and row["server_port"] is None
    # Stopped: stop and ping are conflicts; it can start again.
    assert_error(owner.post(f"/workloads/notebooks/{nid}/stop"), 409, "notebook_not_running")
    assert_error(owner.post(f"/workloads/notebooks/{nid}/ping"), 409, "notebook_not_open")


def test_who_may_start_stop_and_ping(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    viewer = create_member(owner)
    add_to_team(owner, team, viewer, "TEAMVIEWER")
    outsider, _ = org_with_team(compute_api)
    notebook = _notebook(owner, team, teamIds=[team])
    nid = notebook["id"]
    assert_error(viewer.post(f"/workloads/notebooks/{nid}/start"), 403)
    assert_error(outsider.post(f"/workloads/notebooks/{nid}/start"), 404)
    _start(owner, nid)
    assert _wait(owner, nid, "running", "failed")["status"] == "running"
    r = viewer.post(f"/workloads/notebooks/{nid}/ping")  # who may open it records activity
    assert r.status_code == 200 and r.json() == {"message": "Activity recorded."}
    assert_error(outsider.post(f"/workloads/notebooks/{nid}/ping"), 404)
    assert_error(viewer.post(f"/workloads/notebooks/{nid}/stop"), 403)
    # Deleting a live notebook stops it first: nothing of it keeps running.
    session_id = _get(owner, nid)["sessionId"]
    assert owner.delete(f"/workloads/notebooks/{nid}").status_code == 200
    assert_error(owner.get(f"/workloads/notebooks/{nid}"), 404)
    assert _marimo_pid(compute_server, nid) is None
    assert describe(owner, session_id)["status"] == "closed"


def test_a_start_that_cannot_install_its_libraries_fails_with_why(
        compute_api: str, compute_server: LiveServer, package_index: PackageIndex) -> None:
    owner, team = org_with_team(compute_api)
    libraries = [{"pypi": {"package": "no-such-package-anywhere", "repo": package_index.index_url}}]
    notebook = _notebook(owner, team, config={"sail": {"libraries": libraries}})
    _start(owner, notebook["id"])
    failed = _wait(owner, notebook["id"], "failed", "running", timeout=120)
    assert failed["status"] == "failed"
    assert "no-such-package-anywhere" in failed["statusMessage"]
    assert failed["sessionId"] is None
    assert _marimo_pid(compute_server, notebook["id"]) is None
    # A failed notebook can be started again (and fails again the same way).
    _start(owner, notebook["id"])
    assert _wait(owner, notebook["id"], "failed", "running", timeout=120)["status"] == "failed"


def test_the_kernel_can_import_the_configured_libraries(
        compute_api: str, compute_server: LiveServer, package_index: PackageIndex) -> None:
    owner, team = org_with_team(compute_api)
    libraries = [{"pypi": {"package": "sailplane-testlib", "repo": package_index.index_url}}]
    nid = _notebook(owner, team, config={"sail": {"libraries": libraries}})["id"]
    _start(owner, nid)
    assert _wait(owner, nid, "running", "failed", timeout=120)["status"] == "running"
    pid = _marimo_pid(compute_server, nid)
    assert pid is not None
    [path] = process_environ(pid)["PYTHONPATH"].split(os.pathsep)[:1]
    assert (Path(path) / "sailplane_testlib").is_dir()
    assert _stop(owner, nid)["status"] == "stopped"


def test_a_source_marimo_cannot_open_fails_the_start_with_marimos_words(
        compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    nid = _notebook(owner, team)["id"]
    assert owner.put(f"/workloads/notebooks/{nid}/source", content=b"print('not a marimo app')\n").status_code == 200
    _start(owner, nid)
    failed = _wait(owner, nid, "failed", "running")
    assert failed["status"] == "failed"
    assert "marimo server could not start" in failed["statusMessage"]
    assert "not recognized as a marimo notebook" in failed["statusMessage"]
    assert failed["sessionId"] is None
    assert _marimo_pid(compute_server, nid) is None


def test_a_marimo_server_that_dies_fails_the_notebook(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    nid = _notebook(owner, team)["id"]
    _start(owner, nid)
    running = _wait(owner, nid, "running", "failed")
    assert running["status"] == "running"
    pid = _marimo_pid(compute_server, nid)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    failed = _wait(owner, nid, "failed", timeout=30)
    assert "marimo server stopped unexpectedly" in failed["statusMessage"]
    assert describe(owner, running["sessionId"])["status"] == "closed"


def test_detached_then_stopped_when_no_browser_is_attached(timeouts_server: LiveServer) -> None:
    api = f"{timeouts_server.url}/api/v1"
    owner, team = org_with_team(api)
    nid = _notebook(owner, team, detachedTimeoutSeconds=3, idleTimeoutSeconds=3600)["id"]
    presence = timeouts_server.app.state.notebook_presence
    _start(owner, nid)
    detached = _wait(owner, nid, "detached", "failed")
    assert detached["status"] == "detached"
    assert _row(timeouts_server, nid)["detached_at"] is not None
    # A browser attaching (through the proxy) brings it back.
    presence.attach(nid)
    assert _wait(owner, nid, "running", timeout=10)["status"] == "running"
    assert _row(timeouts_server, nid)["detached_at"] is None
    presence.detach(nid)
    assert _wait(owner, nid, "detached", timeout=10)
    stopped = _wait(owner, nid, "stopped", "failed", timeout=20)
    assert stopped["status"] == "stopped" and "no browser" in stopped["statusMessage"]
    assert _marimo_pid(timeouts_server, nid) is None


def test_idle_then_stopped_without_activity(timeouts_server: LiveServer) -> None:
    api = f"{timeouts_server.url}/api/v1"
    owner, team = org_with_team(api)
    nid = _notebook(owner, team, idleTimeoutSeconds=5)["id"]
    presence = timeouts_server.app.state.notebook_presence
    _start(owner, nid)
    presence.attach(nid)  # a browser stays attached: only activity decides
    try:
        assert _wait(owner, nid, "idle", "failed")["status"] == "idle"
        r = owner.post(f"/workloads/notebooks/{nid}/ping")
        assert r.status_code == 200
        assert _get(owner, nid)["status"] == "running"  # activity brings it back at once
        assert _wait(owner, nid, "idle", timeout=10)
        stopped = _wait(owner, nid, "stopped", "failed", timeout=20)
        assert stopped["status"] == "stopped" and "no activity" in stopped["statusMessage"]
    finally:
        presence.detach(nid)
    assert _marimo_pid(timeouts_server, nid) is None


def test_stopped_before_its_kernel_token_expires(tmp_path: Path, database_url: str) -> None:
    """The kernel's SPARK_REMOTE carries a session token that cannot be renewed in the running kernel: the
    notebook stops, saying why, before the gateway would refuse that token (not at once, not after)."""
    data_dir = tmp_path / "node"
    server = LiveServer(compute_settings(data_dir, database_url, notebook_controller_interval_seconds=0.2,
                                         session_token_max_seconds=50, notebook_start_timeout_seconds=20))
    server.start()
    try:
        owner, team = org_with_team(f"{server.url}/api/v1")
        nid = _notebook(owner, team)["id"]
        _start(owner, nid)
        assert _wait(owner, nid, "running", "failed")["status"] == "running"
        running_since = time.monotonic()
        stopped = _wait(owner, nid, "stopped", "failed", timeout=60)
        # 50 s token - 20 s start timeout - 5 s margin after marimo started (a few seconds before `running`).
        assert time.monotonic() - running_since >= 15
        assert stopped["status"] == "stopped" and "token" in stopped["statusMessage"], stopped["statusMessage"]
        assert "SAILPLANE_SESSION_TOKEN_MAX_SECONDS" in stopped["statusMessage"]
        assert _marimo_pid(server, nid) is None
    finally:
        server.stop()
        assert_no_marimo_left(data_dir)
        assert_no_sail_left(data_dir)


def test_restart_adopts_running_notebooks_and_cleans_up_the_rest(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "node"
    try:
        _restart(data_dir, database_url)
    finally:  # also when it failed half-way (the Sail servers too when marimo servers were left)
        try:
            assert_no_marimo_left(data_dir)
        finally:
            assert_no_sail_left(data_dir)


def _restart(data_dir: Path, database_url: str) -> None:
    settings = compute_settings(data_dir, database_url)
    first = LiveServer(settings)
    first.start()
    try:
        api = f"{first.url}/api/v1"
        owner, team = org_with_team(api)
        kept, lost = _notebook(owner, team)["id"], _notebook(owner, team)["id"]
        for nid in (kept, lost):
            _start(owner, nid)
        for nid in (kept, lost):
            assert _wait(owner, nid, "running", "failed")["status"] == "running"
        kept_port = _row(first, kept)["server_port"]
    finally:
        first.stop()
    # While the server is down, one marimo server dies, and one appears that no notebook owns. The node's lock
    # is held meanwhile, as while a server of it starts, so that other nodes of this machine leave its marimo
    # servers alone (they would stop the stray one): this is about what the node's own start does with them.
    holding = NodeLock(data_dir)
    holding.acquire()
    backend = LocalNotebookBackend(data_dir)
    lost_pid = dict(backend.scan())[lost]
    os.killpg(lost_pid, signal.SIGKILL)
    wait_until(lambda: lost not in dict(backend.scan()))
    stray = asyncio.run(backend.start(NotebookServerSpec("STRAYNOTEBOOK", TEMPLATE, "stray-token")))
    assert backend.running(stray)

    second = LiveServer(settings)
    try:
        second.start()
    finally:
        holding.release()
    try:
        owner = dataclasses.replace(owner, base_url=f"{second.url}/api/v1")
        assert _get(owner, kept)["status"] == "running"  # adopted: still the same server
        assert _row(second, kept)["server_port"] == kept_port
        token = Encryptor(settings.secret_key).decrypt(_row(second, kept)["server_secret"])
        assert httpx.get(f"http://127.0.0.1:{kept_port}/notebooks/{kept}/",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
        failed = _get(owner, lost)
        assert failed["status"] == "failed" and "gone when the server restarted" in failed["statusMessage"]
        assert "STRAYNOTEBOOK" not in dict(backend.scan())  # stopped: no notebook owns it
        asyncio.run(backend.stop(stray))  # reaps our child
        assert _stop(owner, kept)["status"] == "stopped"
    finally:
        second.stop()


def test_a_notebook_stopped_while_its_node_is_down(tmp_path: Path, database_url: str, compute_api: str,
                                                 compute_server: LiveServer) -> None:
    """A graceful stop leaves the notebooks' marimo servers running, for the next start to adopt. A notebook
    stopped meanwhile through another node of this machine (the shared compute server) is stopped by that node,
    as its own would (what marimo wrote saved, marimo stopped, Sail session closed), instead of staying
    `stopping` until its node is back; the other one keeps its server and is adopted when the node is back."""
    data_dir = tmp_path / "node"
    try:
        _stopped_while_down(data_dir, database_url, compute_api)
    finally:  # also when it failed half-way (the Sail servers too when marimo servers were left)
        try:
            assert_no_marimo_left(data_dir)
        finally:
            assert_no_sail_left(data_dir)


def _stopped_while_down(data_dir: Path, database_url: str, compute_api: str) -> None:
    settings = compute_settings(data_dir, database_url)
    first = LiveServer(settings)
    first.start()
    try:
        owner, team = org_with_team(f"{first.url}/api/v1")
        stopped, kept = _notebook(owner, team)["id"], _notebook(owner, team)["id"]
        for nid in (stopped, kept):
            _start(owner, nid)
        sessions = {nid: _wait(owner, nid, "running", "failed") for nid in (stopped, kept)}
        assert all(n["status"] == "running" for n in sessions.values()), sessions
        kept_port = _row(first, kept)["server_port"]
    finally:
        first.stop()
    backend = LocalNotebookBackend(data_dir)
    assert {stopped, kept} <= set(dict(backend.scan())), "a graceful stop leaves the marimo servers running"
    owner = dataclasses.replace(owner, base_url=compute_api)  # another node of this machine and deployment
    workloads = {nid: describe(owner, n["sessionId"])["workloadId"] for nid, n in sessions.items()}
    assert set(workloads.values()) <= set(sail_pids(first))
    # What marimo wrote to its file (in the down node's data directory) since it started.
    work_file = data_dir / "notebooks" / stopped / "notebook.py"
    edited = work_file.read_text().replace("40 + 2", "6 * 7")
    work_file.write_text(edited)

    # Stopped through the shared compute node while its node is down: that node stops it.
    r = owner.post(f"/workloads/notebooks/{stopped}/stop")
    assert r.status_code == 200 and r.json()["status"] == "stopping", r.text
    done = _wait(owner, stopped, "stopped", "failed", timeout=20)
    assert done["status"] == "stopped" and done["sessionId"] is None, done
    assert stopped not in dict(backend.scan())
    assert owner.get(f"/workloads/notebooks/{stopped}/source").text == edited
    assert describe(owner, sessions[stopped]["sessionId"])["status"] == "closed"
    wait_until(lambda: workloads[stopped] not in sail_pids(first), timeout=15)  # no open session needs it
    # The live one is left for its node: its marimo server and Sail session run on.
    assert kept in dict(backend.scan()) and workloads[kept] in sail_pids(first)
    assert _get(owner, kept)["status"] == "running"

    second = LiveServer(settings)
    second.start()
    try:
        owner = dataclasses.replace(owner, base_url=f"{second.url}/api/v1")
        assert _get(owner, kept)["status"] == "running"  # adopted: still the same server
        assert _row(second, kept)["server_port"] == kept_port
        assert _stop(owner, kept)["status"] == "stopped"
        assert kept not in dict(backend.scan())
        assert describe(owner, sessions[kept]["sessionId"])["status"] == "closed"
    finally:
        second.stop()


def test_a_notebook_whose_session_is_closed_fails(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    nid = _notebook(owner, team)["id"]
    _start(owner, nid)
    running = _wait(owner, nid, "running", "failed")
    assert running["status"] == "running"
    assert owner.delete(f"/workloads/sessions/{running['sessionId']}").status_code == 200
    failed = _wait(owner, nid, "failed", timeout=30)
    assert "Sail session ended" in failed["statusMessage"]
    assert _marimo_pid(compute_server, nid) is None


def test_stop_while_starting_stops_what_was_started(compute_api: str, compute_server: LiveServer) -> None:
    owner, team = org_with_team(compute_api)
    nid = _notebook(owner, team)["id"]
    _start(owner, nid)
    # Asked while it starts, once its Sail session is recorded (asked before, there is nothing to stop yet).
    starting = wait_until(lambda: (n := _get(owner, nid))["sessionId"] and n, timeout=60, interval=0.05)
    assert starting["status"] == "starting", starting
    stopped = _stop(owner, nid)
    assert stopped["status"] == "stopped", stopped["statusMessage"]
    assert _marimo_pid(compute_server, nid) is None
    sessions = [describe(owner, s["id"])["status"] for s in owner.get("/workloads/sessions").json()["items"]]
    assert sessions and all(s in ("closed", "failed") for s in sessions), sessions
    _start(owner, nid)  # and it starts again afterwards
    assert _wait(owner, nid, "running", "failed")["status"] == "running"
    assert _stop(owner, nid)["status"] == "stopped"
