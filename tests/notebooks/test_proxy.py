"""Opening a notebook and the notebook proxy, over HTTP against a real compute node: the notebooks are started
through the API (a real Sail session and a real marimo server each).

- openNotebook: 409 naming the state unless running/idle/detached; 404 for notebooks the caller cannot
  see; a JWT of audience `sailplane-notebook` verifiable with /.well-known/jwks.json;
- the open URL: once, for 5 minutes, for its own notebook (else a 401 page); a cookie scoped to the
  notebook's path; a cookie of notebook A opens nothing of B;
- the relay: marimo's pages and its WebSocket through the proxy, presence attach/detach, the access
  re-checked (member removed, notebook stopped or restarted), read mode for those who may not edit;
- taking over: a team member who may change the source reads while the owner has a WebSocket attached, edits
  (in a kernel handed over to them: `test_handover.py`) while they do not, and stops editing once the owner comes
  back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import logging
import re
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sailplane.compute.local_notebooks import LocalNotebookBackend
from sailplane.compute.processes import process_start
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import Encryptor
from sailplane.workloads.notebooks import states
from sailplane.workloads.notebooks.models import Notebook
from sailplane.workloads.notebooks.opening import COOKIE_NAME, OPEN_AUDIENCE
from sailplane.workloads.notebooks.presence import NotebookPresence
from tests.notebooks.helpers import Org, build_org, db_rows, make_config, make_notebook, start_running, stop_stopped
from tests.support.actors import Actor, assert_error
from tests.support.server import LiveServer, openapi_document
from tests.support.waiting import wait_until
from tests.support.world import add_to_team, create_member


@dataclass
class Setup:
    org: Org
    config: str
    notebook: str  # dev1's, shared with team 1, running (its own Sail session and marimo server)
    token: str  # its marimo server's access token, which no browser may see
    file: Path  # the .py file its marimo server edits


def new_notebook(o: Org, config: str, name: str = "Proxy notebook") -> str:
    return str(make_notebook(o.dev1, config, name=name, teamIds=[o.team1])["item"]["notebookId"])


@pytest.fixture(scope="module")
def node(compute_server: LiveServer) -> LiveServer:
    """The node that runs the notebooks' marimo servers: its proxy is the one that reaches them."""
    return compute_server


@pytest.fixture(scope="module")
def setup(node: LiveServer, compute_api: str) -> Iterator[Setup]:
    o = build_org(compute_api)
    config = make_config(o.dev1, o.team1)
    notebook = new_notebook(o, config)
    start_running(o.dev1, notebook)
    try:
        [row] = db_rows(node.settings.database_url, "SELECT server_secret FROM notebooks WHERE id = :id", id=notebook)
        yield Setup(o, config, notebook, Encryptor(node.settings.secret_key).decrypt(row["server_secret"]),
                    LocalNotebookBackend(node.settings.data_dir).work_dir(notebook) / "notebook.py")
    finally:
        stop_stopped(o.dev1, notebook)


@pytest.fixture(scope="module")
def shared(node: LiveServer, setup: Setup) -> Iterator[Setup]:
    """Another running notebook of dev1's, shared with team 1, for members who take over its editor session (they
    change its file, and its marimo session moves between them and the owner)."""
    o = setup.org
    notebook = new_notebook(o, setup.config, "Taken over")
    start_running(o.dev1, notebook)
    try:
        [row] = db_rows(node.settings.database_url, "SELECT server_secret FROM notebooks WHERE id = :id", id=notebook)
        yield Setup(o, setup.config, notebook, Encryptor(node.settings.secret_key).decrypt(row["server_secret"]),
                    LocalNotebookBackend(node.settings.data_dir).work_dir(notebook) / "notebook.py")
    finally:
        stop_stopped(o.dev1, notebook)


def open_url(actor: Actor, notebook: str) -> str:
    r = actor.post(f"/workloads/notebooks/{notebook}/open")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"url"}
    return str(r.json()["url"])


def local(node: LiveServer, url: str) -> str:
    """The URL's path and query on the test server (its public URL is configured as another port)."""
    parts = urlsplit(url)
    return f"{node.url}{parts.path}?{parts.query}"


def browser(node: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=node.url, follow_redirects=False, timeout=30, headers={"Accept": "text/html"})


def sign_in(node: LiveServer, actor: Actor, notebook: str) -> httpx.Client:
    """A browser that followed the open URL: it holds the notebook's cookie."""
    client = browser(node)
    r = client.get(local(node, open_url(actor, notebook)))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/notebooks/{notebook}/"
    return client


def cookie_of(client: httpx.Client) -> str:
    return str(next(c.value for c in client.cookies.jar if c.name == COOKIE_NAME))


def assert_page(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "marimo" not in r.text.lower()
    for word in words:
        assert word in r.text


# --- openNotebook -------------------------------------------------------------------------------

def test_open_needs_a_running_notebook(setup: Setup) -> None:
    stopped = new_notebook(setup.org, setup.config, "Stopped notebook")
    r = setup.org.dev1.post(f"/workloads/notebooks/{stopped}/open")
    body = assert_error(r, 409, "notebook_not_running")
    assert "stopped" in body["message"]


def test_open_is_for_those_who_see_the_notebook(setup: Setup) -> None:
    o = setup.org
    for stranger in (o.dev2, o.loner, o.outsider):
        assert_error(stranger.post(f"/workloads/notebooks/{setup.notebook}/open"), 404)
    assert_error(o.dev1.post("/workloads/notebooks/NOSUCHNOTEBOOK/open"), 404)
    assert open_url(o.viewer1, setup.notebook)
    assert open_url(o.admin, setup.notebook)


def test_the_url_holds_a_jwt_verifiable_with_the_jwks(node: LiveServer, setup: Setup) -> None:
    url = open_url(setup.org.dev1, setup.notebook)
    assert url.startswith(f"{node.settings.public_url}/notebooks/{setup.notebook}/_auth?token=")
    token = urlsplit(url).query.removeprefix("token=")
    jwks = httpx.get(f"{node.url}/.well-known/jwks.json").json()
    [key] = jwks["keys"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience=OPEN_AUDIENCE)
    assert claims["nb"] == setup.notebook and claims["org"] == setup.org.dev1.org_id
    assert claims["sub"] == setup.org.dev1.member_id and claims["mode"] == "edit" and claims["jti"]
    assert claims["exp"] - claims["iat"] == 300
    with pytest.raises(jwt.InvalidAudienceError):  # not a session token
        jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience="sailplane-spark-connect")
    viewer = urlsplit(open_url(setup.org.viewer1, setup.notebook)).query.removeprefix("token=")
    assert jwt.decode(viewer, options={"verify_signature": False})["mode"] == "read"


def test_open_is_in_the_openapi_document(api_url: str) -> None:
    doc = openapi_document(api_url)
    operation = doc["paths"]["/api/v1/workloads/notebooks/{notebook}/open"]["post"]
    assert operation["operationId"] == "openNotebook"
    assert {"200", "401", "404", "409"} <= set(operation["responses"])
    assert not [p for p in doc["paths"] if p.startswith("/notebooks")]


# --- the open URL -------------------------------------------------------------------------------

def test_the_url_sets_a_cookie_for_the_notebook_and_shows_it(node: LiveServer, setup: Setup) -> None:
    client = browser(node)
    r = client.get(local(node, open_url(setup.org.dev1, setup.notebook)))
    assert r.status_code == 303 and r.headers["location"] == f"/notebooks/{setup.notebook}/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert f"path=/notebooks/{setup.notebook}/".lower() in attributes
    assert "httponly" in attributes and "samesite=lax" in attributes and "secure" not in attributes
    assert r.headers["cache-control"] == "no-store"

    page = client.get(r.headers["location"])
    assert page.status_code == 200, page.text
    assert "<marimo-" in page.text or "marimo" in page.text.lower()
    assert "set-cookie" not in page.headers  # marimo's own session cookie stays between the proxy and marimo
    assert setup.token not in page.text
    # Framed by the console (same origin) only, the refusal pages too.
    refused = browser(node).get(f"/notebooks/{setup.notebook}/")
    assert refused.status_code == 401
    for answer in (page, refused):
        assert answer.headers["content-security-policy"] == "frame-ancestors 'self'"
        assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    presence: NotebookPresence = node.app.state.notebook_presence
    assert presence.last_seen(setup.notebook) is not None

    # Behind TLS (a proxy saying so), the cookie is Secure.
    secure = browser(node).get(local(node, open_url(setup.org.dev1, setup.notebook)),
                                 headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 303 and "secure" in secure.headers["set-cookie"].lower()


def test_a_used_expired_tampered_or_foreign_url_is_refused(node: LiveServer, setup: Setup) -> None:
    url = local(node, open_url(setup.org.dev1, setup.notebook))
    assert browser(node).get(url).status_code == 303
    assert_page(browser(node).get(url), 401, "already used")

    keys = node.app.state.signing_keys
    claims = {"sub": setup.org.dev1.member_id, "kind": "member", "org": setup.org.dev1.org_id,
              "nb": setup.notebook, "mode": "edit"}
    expired = keys.sign(claims, OPEN_AUDIENCE, 300, now=time.time() - 400)
    assert_page(browser(node).get(f"/notebooks/{setup.notebook}/_auth", params={"token": expired}), 401, "expired")

    fresh = urlsplit(open_url(setup.org.dev1, setup.notebook)).query.removeprefix("token=")
    head, body, signature = fresh.split(".")
    tampered = f"{head}.{body}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    assert_page(browser(node).get(f"/notebooks/{setup.notebook}/_auth", params={"token": tampered}), 401)
    assert_page(browser(node).get(f"/notebooks/{setup.notebook}/_auth"), 401)
    other_audience = keys.sign(claims, "sailplane-spark-connect", 300)
    assert_page(browser(node).get(f"/notebooks/{setup.notebook}/_auth", params={"token": other_audience}), 401)

    other = new_notebook(setup.org, setup.config, "Another notebook")
    assert_page(browser(node).get(f"/notebooks/{other}/_auth", params={"token": fresh}), 401, "another notebook")
    # The untouched token still works for its own notebook: the refusals above did not use it up.
    assert browser(node).get(f"/notebooks/{setup.notebook}/_auth", params={"token": fresh}).status_code == 303


def test_the_cookie_of_one_notebook_opens_nothing_of_another(node: LiveServer, setup: Setup) -> None:
    client = sign_in(node, setup.org.dev1, setup.notebook)
    other = new_notebook(setup.org, setup.config, "Notebook B")
    stolen = cookie_of(client)
    for path in (f"/notebooks/{other}/", f"/notebooks/{other}/api/status"):
        r = browser(node).get(path, headers={"Cookie": f"{COOKIE_NAME}={stolen}"})
        assert_page(r, 404)
    assert_page(browser(node).get(f"/notebooks/{setup.notebook}/"), 401)  # no cookie
    assert_page(browser(node).get(f"/notebooks/{setup.notebook}/", headers={"Cookie": f"{COOKIE_NAME}=forged"}), 401)
    api = httpx.get(f"{node.url}/notebooks/{setup.notebook}/api/status", headers={"Accept": "application/json"})
    assert_error(api, 401, "notebook_access_denied")

    async def socket() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{node.port}/notebooks/{other}/ws?session_id=s-stolen",
                               additional_headers={"Cookie": f"{COOKIE_NAME}={stolen}"}):
                pass
        assert refused.value.response.status_code == 403

    asyncio.run(socket())


# --- the relay ----------------------------------------------------------------------------------

def test_websocket_relay_and_presence(node: LiveServer, setup: Setup) -> None:
    client = sign_in(node, setup.org.dev1, setup.notebook)
    cookie = cookie_of(client)
    presence: NotebookPresence = node.app.state.notebook_presence
    received: list[Any] = []

    async def session() -> None:
        url = f"ws://127.0.0.1:{node.port}/notebooks/{setup.notebook}/ws?session_id=s-relay-test"
        async with connect(url, additional_headers={"Cookie": f"{COOKIE_NAME}={cookie}"}, max_size=None) as ws:
            received.append(await asyncio.wait_for(ws.recv(), 30))
            assert presence.attached(setup.notebook)

    async def from_another_site() -> None:
        url = f"ws://127.0.0.1:{node.port}/notebooks/{setup.notebook}/ws?session_id=s-other-site"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"Cookie": f"{COOKIE_NAME}={cookie}"},
                               origin="https://evil.example.com"):  # type: ignore[arg-type]  # websockets.Origin
                pass
        assert refused.value.response.status_code == 403

    asyncio.run(session())
    assert received and "kernel-ready" in str(received[0])
    wait_until(lambda: not presence.attached(setup.notebook), timeout=10)
    asyncio.run(from_another_site())


def test_the_notebook_servers_socket_is_relayed_uncompressed(node: LiveServer, setup: Setup) -> None:
    """The proxy's own hop to the notebook server (loopback) offers no permessage-deflate: compressing every kernel
    message twice more cost more than it saved. Messages still pass both ways, text and binary."""
    from websockets.asyncio.server import ServerConnection, serve

    offered: list[str | None] = []

    async def echo(connection: ServerConnection) -> None:
        offered.append(connection.request.headers.get("Sec-WebSocket-Extensions") if connection.request else "?")
        async for message in connection:
            await connection.send(message)

    async def scenario() -> None:
        notebook = new_notebook(setup.org, setup.config, "Uncompressed")
        async with serve(echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            with marked_running(node, notebook, port=port, token="w" * 24,
                                editor=f"member:{setup.org.dev1.member_id}"):
                cookie = cookie_of(await asyncio.to_thread(sign_in, node, setup.org.dev1, notebook))
                url = f"ws://127.0.0.1:{node.port}/notebooks/{notebook}/ws?session_id=s-plain"
                async with connect(url, additional_headers={"Cookie": f"{COOKIE_NAME}={cookie}"}) as ws:
                    await ws.send("hello")
                    assert await asyncio.wait_for(ws.recv(), 10) == "hello"
                    await ws.send(b"\x00\x01")
                    assert await asyncio.wait_for(ws.recv(), 10) == b"\x00\x01"

    asyncio.run(scenario())
    assert offered == [None]


def test_read_mode_and_access_rechecked(node: LiveServer, setup: Setup) -> None:
    o = setup.org
    reader = create_member(o.owner)
    add_to_team(o.owner, o.team1, reader, "TEAMVIEWER")
    client = sign_in(node, reader, setup.notebook)
    assert client.get(f"/notebooks/{setup.notebook}/").status_code == 200
    for refused in ("api/kernel/run", "api/kernel/save", "api/files/create", "api/kernel/takeover",
                    "api/kernel/shutdown"):
        r = client.post(f"/notebooks/{setup.notebook}/{refused}", json={})
        assert_page(r, 403, "Read only")
    instantiate = f"/notebooks/{setup.notebook}/api/kernel/instantiate"
    own_code = {"objectIds": [], "values": [], "codes": {"Hbol": "import os; os.system('id')"}}
    assert_page(client.post(instantiate, json=own_code), 403, "Read only")
    assert client.post(instantiate, json={"objectIds": [], "values": []}).status_code != 403  # the saved code
    owner = sign_in(node, o.dev1, setup.notebook)
    r = owner.post(f"/notebooks/{setup.notebook}/api/kernel/run", json={})
    assert r.status_code != 403  # marimo answers (it wants a session): the owner edits

    assert o.owner.delete(f"/org/teams/{o.team1}/members/{reader.member_id}").status_code == 200
    wait_until(lambda: client.get(f"/notebooks/{setup.notebook}/").status_code == 404, timeout=15, interval=0.5)


def test_a_stopped_or_restarted_notebook_is_not_opened(node: LiveServer, setup: Setup) -> None:
    notebook = new_notebook(setup.org, setup.config, "Stops")
    start_running(setup.org.dev1, notebook)
    client = sign_in(node, setup.org.dev1, notebook)
    assert client.get(f"/notebooks/{notebook}/").status_code == 200
    stop_stopped(setup.org.dev1, notebook)
    wait_until(lambda: client.get(f"/notebooks/{notebook}/").status_code == 409, timeout=15, interval=0.5)
    assert_page(client.get(f"/notebooks/{notebook}/"), 409, "stopped")
    assert_error(setup.org.dev1.post(f"/workloads/notebooks/{notebook}/open"), 409, "notebook_not_running")

    start_running(setup.org.dev1, notebook)
    try:
        wait_until(lambda: client.get(f"/notebooks/{notebook}/").status_code == 401, timeout=15, interval=0.5)
        assert_page(client.get(f"/notebooks/{notebook}/"), 401, "restarted")
    finally:
        stop_stopped(setup.org.dev1, notebook)


def test_a_notebook_of_another_node_is_not_relayed(server: LiveServer, setup: Setup) -> None:
    """A marimo server listens on its node's loopback: another node's proxy (the main test server, same
    database, no compute) says so instead of relaying. The URL is signed with that node's keys, as
    nodes sharing a deployment share theirs."""
    claims = {"sub": setup.org.dev1.member_id, "kind": "member", "org": setup.org.dev1.org_id,
              "nb": setup.notebook, "mode": "edit", "jti": secrets.token_urlsafe(16)}
    token = server.app.state.signing_keys.sign(claims, OPEN_AUDIENCE, 300)
    r = httpx.get(f"{server.url}/notebooks/{setup.notebook}/_auth", params={"token": token},
                  headers={"Accept": "text/html"}, follow_redirects=True)
    assert_page(r, 503, "another Sailplane node")


# --- taking over from an inactive owner ---------------------------------------------------------

def developer(o: Org) -> Actor:
    """A new member of team 1 who may change its notebooks' source (Developer)."""
    member = create_member(o.owner)
    add_to_team(o.owner, o.team1, member)
    return member


def socket(node: LiveServer, notebook: str, path: str = "ws") -> str:
    return f"ws://127.0.0.1:{node.port}/notebooks/{notebook}/{path}"


def server_token(client: httpx.Client, notebook: str) -> str:
    """marimo's skew-protection token, from its page: its POSTs carry it."""
    page = client.get(f"/notebooks/{notebook}/")
    assert page.status_code == 200, page.text
    return re.search(r'data-token="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def save(client: httpx.Client, nb: Setup, session_id: str, token: str, code: str) -> httpx.Response:
    """marimo's save of the notebook (one cell of `code`) in the session `session_id`: an edit call."""
    body = {"cellIds": ["Hbol"], "codes": [code], "names": ["_"], "configs": [{}], "filename": str(nb.file)}
    return client.post(f"/notebooks/{nb.notebook}/api/kernel/save", json=body,
                       headers={"Marimo-Session-Id": session_id, "Marimo-Server-Token": token,
                                "Accept": "application/json"})


def no_browser(node: LiveServer, notebook: str) -> None:
    presence: NotebookPresence = node.app.state.notebook_presence
    wait_until(lambda: not presence.attached(notebook), timeout=15)


def test_a_member_reads_while_the_owner_is_active(node: LiveServer, shared: Setup) -> None:
    o = shared.org
    member = developer(o)
    claims = jwt.decode(urlsplit(open_url(member, shared.notebook)).query.removeprefix("token="),
                        options={"verify_signature": False})
    assert claims["mode"] == "takeover"  # at most: what the owner's presence allows
    client = sign_in(node, member, shared.notebook)
    token = server_token(client, shared.notebook)
    owner_cookie = cookie_of(sign_in(node, o.dev1, shared.notebook))
    marker = f"read_only_{uuid.uuid4().hex[:8]}"
    answers: dict[str, Any] = {}

    async def owner_active() -> None:
        async with connect(f"{socket(node, shared.notebook)}?session_id=s-owner-active", max_size=None,
                           additional_headers={"Cookie": f"{COOKIE_NAME}={owner_cookie}"}) as owner:
            await asyncio.wait_for(owner.recv(), 30)
            for session_id in ("s-owner-active", "s-member"):
                answers[session_id] = await asyncio.to_thread(save, client, shared, session_id, token,
                                                              f"{marker} = 1")
            with pytest.raises(InvalidStatus) as refused:
                async with connect(socket(node, shared.notebook, "ws_sync"),
                                   additional_headers={"Cookie": f"{COOKIE_NAME}={cookie_of(client)}"}):
                    pass
            answers["ws_sync"] = refused.value.response.status_code

    asyncio.run(owner_active())
    for session_id in ("s-owner-active", "s-member"):
        refused = assert_error(answers[session_id], 403, "notebook_read_only")
        assert "owner has it open" in refused["message"]
    assert answers["ws_sync"] == 403
    assert marker not in shared.file.read_text()


def test_a_member_edits_while_the_owner_is_away(node: LiveServer, shared: Setup) -> None:
    """No WebSocket of the owner's: a member who may change the source takes over marimo's editor session (as a
    new marimo tab takes over an orphaned one) and saves; a Viewer of the team still reads."""
    o = shared.org
    no_browser(node, shared.notebook)
    member = developer(o)
    client = sign_in(node, member, shared.notebook)
    token = server_token(client, shared.notebook)
    marker = f"taken_over_{uuid.uuid4().hex[:8]}"
    answers: dict[str, httpx.Response] = {}

    async def edit() -> None:
        async with connect(f"{socket(node, shared.notebook)}?session_id=s-member-edits", max_size=None,
                           additional_headers={"Cookie": f"{COOKIE_NAME}={cookie_of(client)}"}) as ws:
            first = str(await asyncio.wait_for(ws.recv(), 30))
            assert "kernel-ready" in first or "reconnected" in first, first
            answers["save"] = await asyncio.to_thread(save, client, shared, "s-member-edits", token,
                                                      f"{marker} = 1")

    asyncio.run(edit())
    assert answers["save"].status_code == 200, answers["save"].text
    assert f"{marker} = 1" in shared.file.read_text()  # marimo wrote the member's cell

    viewer = sign_in(node, o.viewer1, shared.notebook)
    refused = assert_error(save(viewer, shared, "s-viewer", token, "viewer_was_here = 1"), 403,
                           "notebook_read_only")
    assert "owner" not in refused["message"]
    assert "viewer_was_here" not in shared.file.read_text()


def test_the_owner_coming_back_ends_a_members_editing(node: LiveServer, shared: Setup) -> None:
    """Once the owner's WebSocket is attached, the member's edit calls are refused and their edit-mode socket (in
    marimo's editor session) is closed within the access cache's lifetime and a margin (the kernel is handed back
    to the owner: a new one); reloading, they read, and what they saved is kept."""
    o = shared.org
    no_browser(node, shared.notebook)
    member = developer(o)
    client = sign_in(node, member, shared.notebook)
    token = server_token(client, shared.notebook)  # the kernel is handed to the member: their cookie is set again
    member_cookie = {"Cookie": f"{COOKIE_NAME}={cookie_of(client)}"}
    owner_cookie = cookie_of(sign_in(node, o.dev1, shared.notebook))
    before, after = (f"{word}_{uuid.uuid4().hex[:8]}" for word in ("before", "after"))
    limit = node.settings.notebook_access_cache_seconds + 5
    answers: dict[str, Any] = {}

    async def owner_returns() -> None:
        async with connect(f"{socket(node, shared.notebook)}?session_id=s-member-editing", max_size=None,
                           additional_headers=member_cookie) as ws:
            await asyncio.wait_for(ws.recv(), 30)
            saved = await asyncio.to_thread(save, client, shared, "s-member-editing", token, f"{before} = 1")
            assert saved.status_code == 200, saved.text  # the owner is away: the member edits
            async with connect(f"{socket(node, shared.notebook)}?session_id=s-owner-back", max_size=None,
                               additional_headers={"Cookie": f"{COOKIE_NAME}={owner_cookie}"}) as owner:
                await asyncio.wait_for(owner.recv(), 30)
                started = time.monotonic()
                answers["after"] = await asyncio.to_thread(save, client, shared, "s-member-editing", token,
                                                           f"{after} = 1")
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), limit)
                answers["closed after"] = time.monotonic() - started
                # Reloading: the page, in read mode (no document sync socket, no edit call).
                answers["page"] = await asyncio.to_thread(client.get, f"/notebooks/{shared.notebook}/")
                answers["again"] = await asyncio.to_thread(save, client, shared, "s-member-editing", token,
                                                           f"{after} = 2")
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(socket(node, shared.notebook, "ws_sync"), additional_headers=member_cookie):
                        pass
                answers["ws_sync"] = refused.value.response.status_code

    asyncio.run(owner_returns())
    for name in ("after", "again"):
        assert_error(answers[name], 403, "notebook_read_only")
    assert answers["closed after"] < limit
    assert answers["page"].status_code == 200 and answers["ws_sync"] == 403
    text = shared.file.read_text()
    assert f"{before} = 1" in text and after not in text


# --- attacks ------------------------------------------------------------------------------------

def raw_request(node: LiveServer, method: str, target: str, cookie: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A request whose path goes out byte for byte (httpx would remove dot segments first)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in {"Cookie": f"{COOKIE_NAME}={cookie}", "Accept": "text/html",
                            "Content-Length": str(len(body)), **(headers or {})}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_marimos_own_login_and_token_routes_are_not_relayed(node: LiveServer, setup: Setup) -> None:
    """marimo's `GET auth/token` answers its access token to whoever it takes for an editor (the proxy's
    Bearer makes every caller one): through the proxy, for the owner and readers alike, it is not found."""
    o = setup.org
    reader = create_member(o.owner)
    add_to_team(o.owner, o.team1, reader, "TEAMVIEWER")
    for actor in (o.dev1, reader):
        cookie = cookie_of(sign_in(node, actor, setup.notebook))
        for method, path in (("GET", "auth/token"), ("GET", "auth/token/"), ("GET", "auth/login"),
                             ("POST", "auth/login"), ("GET", "auth//token"), ("GET", "./auth/token"),
                             ("GET", "api/../auth/token"), ("GET", "%61uth/token")):
            status, body = raw_request(node, method, f"/notebooks/{setup.notebook}/{path}", cookie)
            assert status in (400, 404), (path, status, body[:300])
            assert setup.token.encode() not in body


def test_read_mode_cannot_reach_refused_calls_through_path_tricks(node: LiveServer, setup: Setup) -> None:
    o = setup.org
    reader = create_member(o.owner)
    add_to_team(o.owner, o.team1, reader, "TEAMVIEWER")
    cookie = cookie_of(sign_in(node, reader, setup.notebook))
    base = f"/notebooks/{setup.notebook}"
    source = setup.file.read_bytes()
    download = f"files/download?path={setup.file}"
    owner_cookie = cookie_of(sign_in(node, o.dev1, setup.notebook))
    status, body = raw_request(node, "GET", f"{base}/api/{download}", owner_cookie)
    assert status == 200 and source in body, (status, body[:300])  # the file is there, and the owner reads it
    for target in (f"{base}/api/./{download}", f"{base}/api/x/../{download}", f"{base}/./api/{download}",
                   f"{base}/api/%2e/{download}", f"{base}/api%2F{download}", f"{base}/api//{download}",
                   f"{base}/api/.%2e/api/{download}", f"{base}/api\\{download}"):
        status, body = raw_request(node, "GET", target, cookie)
        assert status in (400, 403, 404), (target, status, body[:300])
        assert source not in body, target
    for target in (f"{base}/api/kernel/./run", f"{base}/api/kernel/instantiate/../run", f"{base}/api/kernel//run",
                   f"{base}/api/kernel/%2e/run", f"{base}/api/kernel/instantiate/..%2Frun"):
        status, body = raw_request(node, "POST", target, cookie, b"{}", {"Content-Type": "application/json"})
        assert status in (400, 403, 404), (target, status, body[:300])


def test_read_mode_cannot_open_the_document_sync_socket(node: LiveServer, setup: Setup) -> None:
    """marimo's `ws_sync` (Loro document sync, served whenever loro is installed and a session is open)
    applies the cell-code updates any client sends and passes them to the other editors: not for readers."""
    o = setup.org
    reader = create_member(o.owner)
    add_to_team(o.owner, o.team1, reader, "TEAMVIEWER")
    reader_cookie = cookie_of(sign_in(node, reader, setup.notebook))
    owner_cookie = cookie_of(sign_in(node, o.dev1, setup.notebook))
    base = f"ws://127.0.0.1:{node.port}/notebooks/{setup.notebook}"

    async def sync() -> None:
        async with connect(f"{base}/ws?session_id=s-owner-sync", max_size=None,
                           additional_headers={"Cookie": f"{COOKIE_NAME}={owner_cookie}"}) as owner:
            await asyncio.wait_for(owner.recv(), 30)  # the owner's session is open
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{base}/ws_sync", additional_headers={"Cookie": f"{COOKIE_NAME}={reader_cookie}"}):
                    pass
            assert refused.value.response.status_code == 403

    asyncio.run(sync())


def test_tokens_of_another_kind_algorithm_or_key_are_refused(node: LiveServer, setup: Setup) -> None:
    keys = node.app.state.signing_keys
    o = setup.org
    claims = {"sub": o.dev1.member_id, "kind": "member", "org": o.dev1.org_id, "nb": setup.notebook, "mode": "edit"}
    now = int(time.time())
    body = {**claims, "jti": "x" * 16, "iat": now, "exp": now + 300, "aud": OPEN_AUDIENCE}
    public_pem = keys._public_key.public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    other_key = ed25519.Ed25519PrivateKey.generate()
    cookie_value = cookie_of(sign_in(node, o.dev1, setup.notebook))
    forged = {
        "alg none": jwt.encode(body, None, algorithm="none"),
        "HS256 keyed with the public key": _hs256(body, public_pem),
        "another key, same kid": jwt.encode(body, other_key, algorithm="EdDSA", headers={"kid": keys.kid}),
        "another key, no kid": jwt.encode(body, other_key, algorithm="EdDSA"),
        "unknown kid": jwt.encode(body, other_key, algorithm="EdDSA", headers={"kid": "../../etc/passwd"}),
        "session token": keys.issue("SESSIONID", o.dev1.member_id, 300, extra_claims=claims),
        "cookie as open token": cookie_value,
        "garbage": "a.b.c" * 2000,
    }
    for name, token in forged.items():
        r = browser(node).get(f"/notebooks/{setup.notebook}/_auth", params={"token": token})
        assert_page(r, 401)
        assert "set-cookie" not in r.headers, name
    open_token = urlsplit(open_url(o.dev1, setup.notebook)).query.removeprefix("token=")
    as_cookie = {name: token for name, token in forged.items() if token != cookie_value}
    for name, token in {**as_cookie, "open token as cookie": open_token,
                        "cookie signed by another key": jwt.encode(
                            {**body, "aud": "sailplane-notebook-cookie", "run": None}, other_key,
                            algorithm="EdDSA", headers={"kid": keys.kid})}.items():
        r = browser(node).get(f"/notebooks/{setup.notebook}/", headers={"Cookie": f"{COOKIE_NAME}={token}"})
        assert r.status_code == 401, name


def _hs256(body: dict[str, Any], secret: bytes) -> str:
    """An HS256 token keyed with `secret`, built by hand (PyJWT refuses a PEM as an HMAC key)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(body).encode())
    signature = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(signature)}"


def test_the_open_url_opened_twice_at_once_works_once(node: LiveServer, setup: Setup) -> None:
    """Two visits of one open URL racing the single-use check (on SQLite and PostgreSQL): one cookie, one
    "already used" page, never a 500."""
    def visit(url: str, barrier: threading.Barrier) -> httpx.Response:
        barrier.wait()
        return browser(node).get(url)

    for _ in range(8):
        url = local(node, open_url(setup.org.dev1, setup.notebook))
        barrier = threading.Barrier(3)
        with ThreadPoolExecutor(3) as pool:
            answers = sorted(r.status_code for r in pool.map(visit, [url] * 3, [barrier] * 3))
        assert answers == [303, 401, 401], answers


@contextmanager
def marked_running(node: LiveServer, notebook_id: str, *, port: int, token: str,
                   editor: str | None = None) -> Iterator[None]:
    """stopped → starting → running on this node with a server of the test's at `port` (a header recorder, or
    nothing): what the notebook controller writes once marimo answers; the kernel `editor`'s already (no handover
    to ask the controller for: it would find no server of its own there). The controller checks every tick
    that a notebook's server process lives, so a `sleep` of the test's stands for marimo's process: a ref naming
    none would have the notebook failed at the next tick, between any two of the test's steps. Stopped after."""
    process = subprocess.Popen(["sleep", "600"])
    try:
        with node.app.state.db.session() as db:
            assert states.transition(db, notebook_id, states.STARTING)
            values = {"node": node.app.state.notebooks.node,
                      "server_ref": f"{process.pid}:{process_start(process.pid)}",
                      "server_host": "127.0.0.1", "server_port": port,
                      "server_secret": Encryptor(node.settings.secret_key).encrypt(token),
                      "started_at": utcnow(), "kernel_editor": editor}
            assert states.transition(db, notebook_id, states.RUNNING, values=values)
            db.commit()
        yield
        with node.app.state.db.session() as db:
            [status] = db.execute(select(Notebook.status).where(Notebook.id == notebook_id)).scalars()
        assert status in states.OPENABLE_STATES, status  # the controller took the stand-in for a live server
    finally:
        mark_stopped(node, notebook_id)
        process.kill()
        process.wait()


def mark_stopped(node: LiveServer, notebook_id: str) -> None:
    with node.app.state.db.session() as db:
        if states.transition(db, notebook_id, states.STOPPING):
            assert states.transition(db, notebook_id, states.STOPPED, values={
                "node": None, "server_ref": None, "server_host": None, "server_port": None, "server_secret": None,
                "started_at": None})
        db.commit()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in notebook server (a real HTTP server on loopback, not marimo: marimo would not show what it
    was sent): records what the proxy sends, answers with headers a proxy must not pass."""

    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append((self.path, list(self.headers.items())))
        body = b"hello"
        self.send_response(200)
        self.send_header("Set-Cookie", "session=marimo-session; Path=/")
        self.send_header("Connection", "close, X-Hop")
        self.send_header("X-Hop", "hop-by-hop")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_headers_between_browser_and_notebook_server(node: LiveServer, setup: Setup,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The notebook server gets its token as the one Authorization, none of the browser's credentials, cookies
    or forwarding claims; the browser gets no Set-Cookie and no header the server named hop-by-hop; the token
    is in no log line."""
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    try:
        notebook = new_notebook(setup.org, setup.config, "Headers")
        secret = "marimo-secret-" + "x" * 20
        editor = f"member:{setup.org.dev1.member_id}"
        caplog.set_level(logging.DEBUG)
        with marked_running(node, notebook, port=upstream.server_address[1], token=secret, editor=editor):
            client = sign_in(node, setup.org.dev1, notebook)
            r = client.get(f"/notebooks/{notebook}/page", headers={
                "Authorization": "Bearer from-the-browser", "Proxy-Authorization": "Basic eDp5",
                "Cookie": f"{COOKIE_NAME}={cookie_of(client)}; other=1", "X-Forwarded-Host": "evil.example",
                "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                "Forwarded": "for=203.0.113.9;host=evil", "X-Real-IP": "203.0.113.9",
                "Connection": "keep-alive, X-Browser-Hop", "X-Browser-Hop": "1"})
            assert r.status_code == 200 and r.text == "hello"
            assert "set-cookie" not in r.headers and "x-hop" not in r.headers
            [(path, headers)] = _Recorder.seen
            assert path == f"/notebooks/{notebook}/page"
            sent = [(k.lower(), v) for k, v in headers]
            assert [v for k, v in sent if k == "authorization"] == [f"Bearer {secret}"]
            names = {k for k, _ in sent}
            assert not names & {"cookie", "proxy-authorization", "x-forwarded-host", "forwarded", "x-real-ip",
                                "x-browser-hop"}, sent
            # One of each, the proxy's: the client and scheme as the API's server took them (here its uvicorn
            # trusts the loopback test client's forwarding headers).
            assert [v for k, v in sent if k == "x-forwarded-for"] == ["203.0.113.9"]
            assert [v for k, v in sent if k == "x-forwarded-proto"] == ["https"]

        with marked_running(node, notebook, port=9, token=secret, editor=editor):
            refused = sign_in(node, setup.org.dev1, notebook).get(f"/notebooks/{notebook}/page")
            assert_page(refused, 502)
            assert secret not in refused.text
        assert secret not in caplog.text and setup.token not in caplog.text
    finally:
        upstream.shutdown()
        upstream.server_close()


class _CookieSetter(_Recorder):
    seen: list[tuple[str, list[tuple[str, str]]]] = []


def test_a_notebook_servers_cookies_reach_no_other_request(node: LiveServer, setup: Setup) -> None:
    """A marimo server's Set-Cookie goes back to no browser, and the proxy keeps none either: its next request,
    to that server or to another notebook's (marimo servers differ by port alone, which cookies ignore), carries
    no cookie, so nothing one notebook's server set reaches another tenant's server."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CookieSetter) for _ in range(2)]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    editor = f"member:{setup.org.dev1.member_id}"
    first, second = (new_notebook(setup.org, setup.config, name) for name in ("Cookies A", "Cookies B"))
    try:
        with marked_running(node, first, port=servers[0].server_address[1], token="a" * 24, editor=editor), \
                marked_running(node, second, port=servers[1].server_address[1], token="b" * 24, editor=editor):
            browsers = {nid: sign_in(node, setup.org.dev1, nid) for nid in (first, second)}
            for nid in (first, second, first):
                r = browsers[nid].get(f"/notebooks/{nid}/page")
                assert r.status_code == 200 and "set-cookie" not in r.headers
        assert [path for path, _ in _CookieSetter.seen] == [f"/notebooks/{nid}/page" for nid in (first, second, first)]
        for _, headers in _CookieSetter.seen:
            assert "cookie" not in {k.lower() for k, _ in headers}, headers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_read_mode_cannot_act_in_the_owners_marimo_session(node: LiveServer, setup: Setup) -> None:
    """marimo keys its HTTP calls by the Marimo-Session-Id header: a reader naming the owner's session would set
    its UI elements (press its buttons), call its functions and interrupt it. Readers neither list the sessions
    nor reach one they did not open (their session IDs are their own, distinct from everyone else's)."""
    o = setup.org
    reader = create_member(o.owner)
    add_to_team(o.owner, o.team1, reader, "TEAMVIEWER")
    reader_client = sign_in(node, reader, setup.notebook)
    owner_cookie = cookie_of(sign_in(node, o.dev1, setup.notebook))
    base = f"/notebooks/{setup.notebook}"
    owner_session = "s-owner-" + uuid.uuid4().hex[:8]
    answers: dict[str, httpx.Response] = {}
    page = reader_client.get(f"{base}/").text  # marimo's page holds its skew-protection token, which POSTs carry
    server_token = re.search(r'data-token="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    async def attack() -> None:
        async with connect(f"ws://127.0.0.1:{node.port}{base}/ws?session_id={owner_session}", max_size=None,
                           additional_headers={"Cookie": f"{COOKIE_NAME}={owner_cookie}"}) as owner:
            await asyncio.wait_for(owner.recv(), 30)
            answers["sessions"] = await asyncio.to_thread(reader_client.get, f"{base}/api/sessions")
            answers["interrupt"] = await asyncio.to_thread(
                reader_client.post, f"{base}/api/kernel/interrupt", json={},
                headers={"Marimo-Session-Id": owner_session, "Marimo-Server-Token": server_token,
                         "Accept": "application/json"})
            answers["ui"] = await asyncio.to_thread(
                reader_client.post, f"{base}/api/kernel/set_ui_element_value",
                json={"objectIds": [], "values": []},
                headers={"Marimo-Session-Id": owner_session, "Marimo-Server-Token": server_token,
                         "Accept": "application/json"})

    asyncio.run(attack())
    assert answers["sessions"].status_code == 403 and owner_session not in answers["sessions"].text
    for name in ("interrupt", "ui"):
        assert answers[name].status_code >= 400 and "success" not in answers[name].text, answers[name].text

    # A reader's own session works as before.
    reader_cookie = cookie_of(reader_client)
    own: dict[str, httpx.Response] = {}

    async def own_session() -> None:
        async with connect(f"ws://127.0.0.1:{node.port}{base}/ws?session_id=s-reader-own", max_size=None,
                           additional_headers={"Cookie": f"{COOKIE_NAME}={reader_cookie}"}) as ws:
            first = str(await asyncio.wait_for(ws.recv(), 30))  # a new session, or the file's orphaned one resumed
            assert "kernel-ready" in first or "reconnected" in first, first
            own["interrupt"] = await asyncio.to_thread(
                reader_client.post, f"{base}/api/kernel/interrupt", json={},
                headers={"Marimo-Session-Id": "s-reader-own", "Marimo-Server-Token": server_token,
                         "Accept": "application/json"})

    asyncio.run(own_session())
    assert own["interrupt"].status_code == 200, own["interrupt"].text


def test_an_open_websocket_ends_when_access_does(node: LiveServer, setup: Setup) -> None:
    """A member removed from the team mid-WebSocket is disconnected within the access cache's lifetime (and a few
    seconds); their cookie opens no new socket."""
    o = setup.org
    reader = create_member(o.owner)
    add_to_team(o.owner, o.team1, reader, "TEAMVIEWER")
    cookie = cookie_of(sign_in(node, reader, setup.notebook))
    url = f"ws://127.0.0.1:{node.port}/notebooks/{setup.notebook}/ws?session_id=s-removed"
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
    limit = node.settings.notebook_access_cache_seconds * 2 + 10

    async def removed() -> float:
        async with connect(url, additional_headers=headers, max_size=None) as ws:
            await asyncio.wait_for(ws.recv(), 30)
            r = await asyncio.to_thread(o.owner.delete, f"/org/teams/{o.team1}/members/{reader.member_id}")
            assert r.status_code == 200, r.text
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), limit)
            return time.monotonic() - started

    assert asyncio.run(removed()) < limit

    async def again() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403

    time.sleep(node.settings.notebook_access_cache_seconds + 0.5)
    asyncio.run(again())


def test_a_huge_body_is_refused_in_the_error_shape(node: LiveServer, setup: Setup) -> None:
    """Over the API's request limit, with or without a Content-Length, for the owner's relay and a reader's
    `instantiate` (which the proxy reads whole): 413, never a 500 or a body read to the end."""
    o = setup.org
    reader = create_member(o.owner)
    add_to_team(o.owner, o.team1, reader, "TEAMVIEWER")
    owner = sign_in(node, o.dev1, setup.notebook)
    readers = sign_in(node, reader, setup.notebook)
    big = b"x" * (node.settings.max_request_bytes + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    base = f"/notebooks/{setup.notebook}/api/kernel"
    json_accept = {"Accept": "application/json", "Content-Type": "application/json"}
    for client, path in ((owner, "run"), (readers, "instantiate")):
        assert_error(client.post(f"{base}/{path}", content=big, headers=json_accept), 413)
        assert_error(client.post(f"{base}/{path}", content=chunks(), headers=json_accept), 413)


def test_malformed_tokens_cookies_and_paths_are_4xx(node: LiveServer, setup: Setup) -> None:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    odd = ["", "a", "a.b", "a.b.c.d", "e30.e30.", b64(b"[1]") + ".e30.x",
           b64(b'{"alg":[1],"kid":[]}') + ".e30.x", b64(b'{"alg":"EdDSA","kid":{}}') + "." + b64(b"[]") + ".x",
           "\u00e9\u00e9", "%00", "x" * 20000]
    base = f"/notebooks/{setup.notebook}"
    for value in odd:
        r = browser(node).get(f"{base}/_auth", params={"token": value})
        assert 400 <= r.status_code < 500, (value[:40], r.status_code, r.text[:200])
        r = browser(node).get(f"{base}/", headers={"Cookie": f"{COOKIE_NAME}={value}".encode()})
        assert 400 <= r.status_code < 500, (value[:40], r.status_code, r.text[:200])
    cookie = cookie_of(sign_in(node, setup.org.dev1, setup.notebook))
    for target in ("/notebooks/%00/", f"{base}/%00", f"{base}/%ff%fe", "/notebooks/" + "A" * 5000 + "/_auth?token=x",
                   "/notebooks/../api/v1/", f"{base}/..", f"{base}/%2e%2e/", f"{base}/api/%2e%2e/%2e%2e/x"):
        status, body = raw_request(node, "GET", target, cookie)
        assert 400 <= status < 500, (target[:60], status, body[:200])


def test_a_websocket_without_the_cookie_or_from_an_opaque_origin_is_refused(node: LiveServer,
                                                                           setup: Setup) -> None:
    cookie = cookie_of(sign_in(node, setup.org.dev1, setup.notebook))
    url = f"ws://127.0.0.1:{node.port}/notebooks/{setup.notebook}/ws?session_id=s-no-cookie"

    async def refused(headers: dict[str, str], origin: str | None = None) -> None:
        with pytest.raises(InvalidStatus) as answer:
            async with connect(url, additional_headers=headers, origin=origin):  # type: ignore[arg-type]
                pass
        assert answer.value.response.status_code == 403

    asyncio.run(refused({}))
    asyncio.run(refused({"Cookie": "other=1"}))
    asyncio.run(refused({"Cookie": f"{COOKIE_NAME}={cookie}"}, origin="null"))  # a sandboxed frame, a data: page
    asyncio.run(refused({"Cookie": f"{COOKIE_NAME}={cookie}"}, origin=f"http://127.0.0.1:{node.port}.evil.example"))
