"""The kernel is its editor's: when the one who edits a notebook changes (owner -> member, member -> owner), the
notebook controller gives the new editor a new marimo server and kernel (an emptied working directory, the same
Sail session), saving the source first; a cookie of an earlier kernel generation no longer edits.

Real marimo servers on a real Sail session (the sessions' compute node), driven through the proxy as a browser
does: marimo's page, its WebSocket and its `api/kernel/run` and `save` calls.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sailplane.compute.local_notebooks import LocalNotebookBackend
from sailplane.kit.crypto import Encryptor
from sailplane.workloads.notebooks.opening import COOKIE_NAME
from tests.notebooks.helpers import build_org, db_rows, make_config, start_running, stop_stopped
from tests.notebooks.test_proxy import (
    Setup,
    cookie_of,
    developer,
    new_notebook,
    no_browser,
    save,
    server_token,
    sign_in,
)
from tests.support.actors import assert_error
from tests.support.server import LiveServer


@pytest.fixture
def notebook(compute_server: LiveServer, compute_api: str) -> Iterator[Setup]:
    """A running notebook of dev1's, shared with team 1 (a new one per test: each test hands its kernel over)."""
    o = build_org(compute_api)
    config = make_config(o.dev1, o.team1)
    notebook_id = new_notebook(o, config, "Handed over")
    start_running(o.dev1, notebook_id)
    try:
        [row] = db_rows(compute_server.settings.database_url, "SELECT server_secret FROM notebooks WHERE id = :id",
                        id=notebook_id)
        yield Setup(o, config, notebook_id, Encryptor(compute_server.settings.secret_key).decrypt(row["server_secret"]),
                    LocalNotebookBackend(compute_server.settings.data_dir).work_dir(notebook_id) / "notebook.py")
    finally:
        stop_stopped(o.dev1, notebook_id)


class Kernel:
    """A marimo editor session through the proxy: its WebSocket, and the HTTP calls of the session."""

    def __init__(self, node: LiveServer, nb: Setup, client: httpx.Client, session_id: str) -> None:
        self.nb = nb
        self.client = client
        self.session_id = session_id
        self.token = server_token(client, nb.notebook)  # an edit-mode request: the kernel becomes the holder's
        url = f"ws://127.0.0.1:{node.port}/notebooks/{nb.notebook}/ws?session_id={session_id}"
        self.ws: ClientConnection = connect(url, additional_headers={"Cookie": f"{COOKIE_NAME}={cookie_of(client)}"},
                                            open_timeout=60, max_size=None).__enter__()  # closed by close()
        first = self.next_op(("kernel-ready", "reconnected"), timeout=60)
        self.first = first

    def close(self) -> None:
        self.ws.close()

    def next_op(self, ops: tuple[str, ...], timeout: float = 60.0, when: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {ops} message"
            message = json.loads(self.ws.recv(timeout=left))
            if message.get("op") in ops and (when is None or when(message.get("data") or {})):
                return message  # type: ignore[no-any-return]

    def run(self, cell: str, code: str) -> str:
        """Run one cell of `code`; its output (as marimo sends it) once the cell is idle again."""
        r = self.client.post(f"/notebooks/{self.nb.notebook}/api/kernel/run", json={"cellIds": [cell], "codes": [code]},
                             headers={"Marimo-Session-Id": self.session_id, "Marimo-Server-Token": self.token,
                                      "Accept": "application/json"})
        assert r.status_code == 200, r.text
        outputs: list[str] = []

        def done(data: dict[str, Any]) -> bool:
            if data.get("cell_id") != cell:
                return False
            if data.get("output"):
                outputs.append(json.dumps(data["output"].get("data")))
            console = data.get("console")
            if console:
                outputs.append(json.dumps(console))
            return bool(outputs) and data.get("status") == "idle"

        self.next_op(("cell-op",), when=done)
        return " ".join(outputs)


PROBE = ("import os as _os\n"
         "f\"probe:{globals().get('secret_value')!r}:{_os.path.exists('secret.txt')}:{_os.getcwd()}\"")


def test_a_member_taking_over_gets_a_kernel_of_their_own(compute_server: LiveServer, notebook: Setup) -> None:
    """The owner reads a secret into a variable and a file of the kernel's working directory and saves a cell;
    once they are away, a member who may edit takes over: the member's kernel has neither the variable nor the
    file, and the source the owner saved is the one the member's kernel runs with."""
    node, nb, o = compute_server, notebook, notebook.org
    secret = f"S3CRET-{uuid.uuid4().hex}"
    kept = f"kept_{uuid.uuid4().hex[:8]}"
    owner = Kernel(node, nb, sign_in(node, o.dev1, nb.notebook), "s-owner")
    try:
        out = owner.run("Owner1", f"secret_value = {secret!r}\n"
                                  f"open('secret.txt', 'w').write(secret_value)\n"
                                  f"'owner ran'")
        assert "owner ran" in out, out
        assert secret in owner.run("Owner2", PROBE)  # the owner's kernel has it
        assert (nb.file.parent / "secret.txt").read_text() == secret
        saved = save(owner.client, nb, "s-owner", owner.token, f"{kept} = 1")
        assert saved.status_code == 200, saved.text
    finally:
        owner.close()
    no_browser(node, nb.notebook)

    member = Kernel(node, nb, sign_in(node, developer(o), nb.notebook), "s-member")
    try:
        out = member.run("Member1", PROBE)
        assert "probe:None:False" in out, out
        assert secret not in out
        assert member.first["op"] == "kernel-ready"  # a new kernel, not the owner's session resumed
    finally:
        member.close()
    assert not (nb.file.parent / "secret.txt").exists()
    assert secret not in "".join(p.read_text(errors="replace") for p in nb.file.parent.rglob("*") if p.is_file())
    assert f"{kept} = 1" in nb.file.read_text()  # the new kernel's file is the source the owner saved
    source = o.dev1.get(f"/workloads/notebooks/{nb.notebook}/source")
    assert source.status_code == 200 and f"{kept} = 1" in source.text
    assert secret not in source.text
    [row] = db_rows(node.settings.database_url, "SELECT kernel_generation, kernel_editor FROM notebooks WHERE id = :id",
                    id=nb.notebook)
    assert row["kernel_generation"] >= 1


def test_a_cookie_of_an_earlier_kernel_no_longer_edits(compute_server: LiveServer, notebook: Setup) -> None:
    """After the kernel went to a member, the owner's earlier cookie reads only (its edit calls are refused with
    why, its document sync socket too); opening the notebook again the owner edits, in a new kernel, and the
    member's cookie is then the earlier one."""
    node, nb, o = compute_server, notebook, notebook.org
    owner_client = sign_in(node, o.dev1, nb.notebook)
    owner = Kernel(node, nb, owner_client, "s-owner-first")
    owner.close()
    no_browser(node, nb.notebook)
    old_cookie = {"Cookie": f"{COOKIE_NAME}={cookie_of(owner_client)}"}

    member_client = sign_in(node, developer(o), nb.notebook)
    member = Kernel(node, nb, member_client, "s-member-takes")
    try:
        saved = save(member_client, nb, "s-member-takes", member.token, "member_cell = 1")
        assert saved.status_code == 200, saved.text
    finally:
        member.close()
    no_browser(node, nb.notebook)

    stale = httpx.Client(base_url=node.url, timeout=30, headers={"Accept": "text/html"},
                         cookies={COOKIE_NAME: cookie_of(owner_client)})
    stale_kernel = Kernel(node, nb, stale, "s-owner-stale")  # it still reads: the page and a session of its own
    try:
        refused = assert_error(save(stale, nb, "s-owner-stale", stale_kernel.token, "owner_stale = 1"), 403,
                               "notebook_read_only")
    finally:
        stale_kernel.close()
    assert "open the notebook again" in refused["message"]
    assert "owner_stale" not in nb.file.read_text()
    with pytest.raises(InvalidStatus) as sync_refused, \
            connect(f"ws://127.0.0.1:{node.port}/notebooks/{nb.notebook}/ws_sync", additional_headers=old_cookie,
                    open_timeout=30):
        pass
    assert sync_refused.value.response.status_code == 403

    again = Kernel(node, nb, sign_in(node, o.dev1, nb.notebook), "s-owner-again")
    try:
        assert again.first["op"] == "kernel-ready"
        saved = save(again.client, nb, "s-owner-again", again.token, "owner_back = 1")
        assert saved.status_code == 200, saved.text
    finally:
        again.close()
    member_token = server_token(member_client, nb.notebook)
    assert_error(save(member_client, nb, "s-member-takes", member_token, "member_again = 1"), 403,
                 "notebook_read_only")
    assert "owner_back = 1" in nb.file.read_text() and "member_again" not in nb.file.read_text()


def test_a_member_after_a_member_gets_a_new_kernel_over_the_websocket(compute_server: LiveServer,
                                                                      notebook: Setup) -> None:
    """Member to member: the second member's first call is marimo's WebSocket; the handshake's answer sets their
    cookie for the new kernel generation, their kernel has nothing of the first member's, and the first member's
    cookie no longer edits."""
    node, nb, o = compute_server, notebook, notebook.org
    first_client = sign_in(node, developer(o), nb.notebook)
    first = Kernel(node, nb, first_client, "s-first-member")
    try:
        assert "first ran" in first.run("First1", "secret_value = 'first-member-secret'\n'first ran'")
    finally:
        first.close()
    no_browser(node, nb.notebook)
    [before] = db_rows(node.settings.database_url, "SELECT kernel_generation FROM notebooks WHERE id = :id",
                       id=nb.notebook)

    second_client = sign_in(node, developer(o), nb.notebook)
    url = f"ws://127.0.0.1:{node.port}/notebooks/{nb.notebook}/ws?session_id=s-second-member"
    with connect(url, additional_headers={"Cookie": f"{COOKIE_NAME}={cookie_of(second_client)}"}, open_timeout=60,
                 max_size=None) as ws:
        set_cookie = ws.response.headers.get("set-cookie", "")
        assert set_cookie.startswith(f"{COOKIE_NAME}=") and "httponly" in set_cookie.lower()
        assert f"Path=/notebooks/{nb.notebook}/" in set_cookie
        first_op = json.loads(ws.recv(timeout=60))
        assert first_op["op"] == "kernel-ready", first_op
    [after] = db_rows(node.settings.database_url, "SELECT kernel_generation FROM notebooks WHERE id = :id",
                      id=nb.notebook)
    assert after["kernel_generation"] == before["kernel_generation"] + 1
    second_client.cookies.clear()  # as the browser does: the handshake's cookie replaces the one it had
    second_client.cookies.set(COOKIE_NAME, set_cookie.split(";")[0].split("=", 1)[1])
    second = Kernel(node, nb, second_client, "s-second-member")
    try:
        out = second.run("Second1", PROBE)
        assert "probe:None:False" in out and "first-member-secret" not in out, out
    finally:
        second.close()
    first_token = server_token(first_client, nb.notebook)
    refused = assert_error(save(first_client, nb, "s-first-member", first_token, "first_again = 1"), 403,
                           "notebook_read_only")
    assert "open the notebook again" in refused["message"]
