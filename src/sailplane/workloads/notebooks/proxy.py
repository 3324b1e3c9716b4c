"""The notebook proxy: `/notebooks/{notebook}/...` on the API's host, relayed to the notebook's marimo server.

- `GET /notebooks/{notebook}/_auth?token=...` exchanges an open URL's single-use token for a cookie scoped to
  the notebook's path (`opening.redeem`) and redirects (303) to `/notebooks/{notebook}/`;
- every other HTTP method and path under `/notebooks/{notebook}/` is streamed both ways (httpcore's connection
  pool: no cookie jar, so nothing one marimo server sets is sent to another, and no per-call layers) to the
  marimo server named by the notebook's row (`server_host:server_port`, which runs with `--base-url
  /notebooks/{notebook}`, so paths pass unchanged), WebSockets too (the `websockets` library). The marimo
  access token (`server_secret`, decrypted) travels as `Authorization: Bearer`, which marimo's auth
  accepts: the browser never sees it. Sailplane's cookie, and any Authorization the browser sends, are
  not forwarded; marimo's own session cookie is not passed back.

Every request is admitted by its cookie (`opening.cookie_claims`) and the database's current answer
(`opening.authorize`), kept per holder, cookie generation and kernel change (`NotebookPresence.kernel_epoch`:
a handover makes every cached answer of the notebook old at once) for `notebook_access_cache_seconds`; the
mode is decided again on every request from that answer and whether the owner is active now (`Target.now`, this
node's presence: a cheap read, so an owner coming back stops a member's edit calls at once). An open WebSocket is
re-checked as often and closed once access is gone, or once a socket opened in edit mode would be read mode now
or its kernel is no longer its holder's (handed over). Refusals are a small HTML page (JSON for
non-browser callers).

The kernel is its editor's (`opening`, "The kernel is the editor's alone"): an edit-mode request or socket of a
holder whose kernel it is not asks the notebook controller for one (`NotebookProxy.own_kernel`) and waits, at most
`notebook_start_timeout_seconds` and a margin (then 503 `notebook_unavailable`); the answer then sets the holder's
cookie again for the new generation (on the WebSocket's handshake answer too).

Read mode (those who see the notebook but may not change its source, and members who may while its owner is
active; `opening` says who): only reads and the calls that run the notebook as saved and interact with its
outputs pass (`READ_MODE_POSTS`); editing, saving, files, terminals, packages, secrets and AI endpoints, the
session list and the document sync socket are refused with 403 `notebook_read_only`; a reader's marimo
session IDs are rewritten to IDs of their own (`reader_session_id`).

Whatever the mode, paths marimo and the checks here could read differently (dot or empty segments, encoded
slashes) are refused (400), and marimo's own `auth/` routes are not relayed (`check_path`).

Presence (`NotebookPresence`): a relayed WebSocket attaches on open and detaches on close (as the owner's when
its holder is the owner, editing); every request and message touches the notebook.

Every answer may be framed by pages of the same origin only (`FRAMING`: the console embeds the notebook).

Routes are outside `/api/v1` and the OpenAPI document (browser traffic, not API operations).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpcore
from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.responses import HTMLResponse, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from sailplane.config import Settings
from sailplane.gateway.tokens import SigningKeys
from sailplane.iam.auth.deps import Db
from sailplane.kit.errors import error_body
from sailplane.workloads.notebooks import opening
from sailplane.workloads.notebooks.opening import COOKIE_NAME, EDIT, TAKEOVER, Denied, Target
from sailplane.workloads.notebooks.presence import NotebookPresence
from sailplane.workloads.notebooks.states import OPENABLE_STATES

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "host"})
# Not the browser's credentials, nor its claims of where it comes from (marimo's uvicorn trusts forwarding headers
# from the loopback proxy): the proxy sets X-Forwarded-For and -Proto itself.
NOT_FORWARDED = HOP_BY_HOP | {"cookie", "authorization", "forwarded", "x-forwarded-for", "x-forwarded-proto",
                              "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix", "x-real-ip"}
NOT_RETURNED = HOP_BY_HOP | {"set-cookie", "server", "date"}  # the API's server sets its own Date and Server
UPSTREAM_TIMEOUTS = {"connect": 10.0, "read": 60.0, "write": 60.0, "pool": 60.0}
UPSTREAM_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                   httpcore.UnsupportedProtocol)
READ_WHOLE_BYTES = 256 * 1024  # most of marimo's assets and every API answer: sent in one piece
# Read mode: marimo calls (after the base path) a reader may make besides GET/HEAD/OPTIONS: running the
# notebook as saved, its UI elements, interrupting, and previews of data sources. Not: taking over another tab's
# session, restarting or shutting down, and `instantiate` with `codes` (code of the browser's own).
INSTANTIATE = "api/kernel/instantiate"
READ_MODE_POSTS = frozenset({
    INSTANTIATE, "api/kernel/set_ui_element_value", "api/kernel/set_model_value", "api/kernel/function_call",
    "api/kernel/interrupt", "api/datasources/preview_column", "api/datasources/preview_sql_table",
    "api/datasources/preview_sql_table_list", "api/datasources/preview_sql_schema_list",
})
READ_MODE_REFUSED_PREFIXES = ("api/files/", "api/storage/", "api/secrets/", "api/ai/", "terminal", "lsp",
                              "api/lsp/", "api/packages/", "api/export/", "api/environment", "api/sessions")
# marimo keys a session's HTTP calls by this header (and its sockets by the `session_id` query parameter): a
# reader's are rewritten to session IDs of their own (`reader_session_id`), so a reader never names the editor's
# session (the owner's, or a member's who took it over: naming it would let them set its UI elements, call its
# functions, interrupt it) nor another reader's. Edit mode passes them unchanged: its socket is the editor.
SESSION_HEADER = "marimo-session-id"
SESSION_PARAM = "session_id"
# Not `ws_sync`: marimo's document sync socket applies the Loro updates any client sends (cell code edits).
READ_MODE_SOCKETS = frozenset({"ws"})
# marimo's own login (`auth/login`) and `auth/token`, which answers its access token to any editor (and the
# proxy's Bearer makes every caller one): never relayed, whatever the mode.
NOT_RELAYED_FIRST_SEGMENTS = frozenset({"auth"})


class NotebookProxy:
    """The proxy's state on one node: an HTTP client pool to marimo servers and the holders' recent answers."""

    def __init__(self, settings: Settings, node: Callable[[], str | None], presence: NotebookPresence,
                 wake: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.node = node  # this node's name while its notebook controller runs (None: it serves no notebook)
        self.presence = presence
        self.wake = wake  # the notebook controller, to act on a handover asked
        self.ttl = settings.notebook_access_cache_seconds
        self.handover_timeout = settings.notebook_start_timeout_seconds + 15.0
        self._pool: httpcore.AsyncConnectionPool | None = None
        self._answers: dict[tuple[Any, ...], tuple[float, Target | Denied]] = {}
        self._cookies: dict[tuple[str, str], dict[str, Any]] = {}  # verified cookies' claims

    @property
    def pool(self) -> httpcore.AsyncConnectionPool:
        if self._pool is None:
            self._pool = httpcore.AsyncConnectionPool(max_connections=200, keepalive_expiry=30.0)
        return self._pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()

    def claims(self, keys: SigningKeys, cookie: str | None, notebook_id: str) -> dict[str, Any]:
        """`opening.cookie_claims`, remembered while the cookie lasts: a page is hundreds of requests with the same
        cookie, and its signature check was a tenth of the proxy's time on each."""
        key = (cookie or "", notebook_id)
        claims = self._cookies.get(key)
        if claims is not None and claims["exp"] > time.time():
            return claims
        claims = opening.cookie_claims(keys, cookie, notebook_id)
        if len(self._cookies) > 10_000:
            self._cookies.clear()
        self._cookies[key] = claims
        return claims

    async def admit(self, db_factory: Any, keys: SigningKeys, notebook_id: str, cookie: str | None,
                    *, fresh: bool = False) -> Target:
        """The target for this cookie now (the database's answer from memory when given within `ttl`, the mode
        for the owner's presence now); raises Denied."""
        claims = self.claims(keys, cookie, notebook_id)
        key = (notebook_id, claims["kind"], claims["sub"], claims["org"], claims["run"], claims["mode"], claims["gen"],
               self.presence.kernel_epoch(notebook_id))
        stamp = time.monotonic()
        found = None if fresh else self._answers.get(key)
        if found is None or stamp - found[0] >= self.ttl:
            answer = await asyncio.to_thread(self._check, db_factory, notebook_id, claims)
            if len(self._answers) > 10_000:
                self._answers.clear()
            found = self._answers[key] = (stamp, answer)
        if isinstance(found[1], Denied):
            raise found[1]
        return found[1].now(self.presence.owner_attached(notebook_id))

    async def own_kernel(self, db_factory: Any, keys: SigningKeys, notebook_id: str, cookie: str | None,
                         target: Target) -> tuple[Target, tuple[str, int] | None]:
        """`target` as it is unless it is in edit mode on a kernel that is not its holder's; then the kernel handed
        to its holder by the notebook controller (asked and waited for) and the cookie (value, max age) for its
        generation (None when it is the cookie's: a kernel nobody edited in yet, claimed as it is); or, when
        someone else got the kernel meanwhile, the holder's access as it now is (read mode). Raises Denied (503
        when the handover takes too long; the notebook stopped meanwhile)."""
        if target.mode != EDIT or target.kernel_for:
            return target, None
        claims = self.claims(keys, cookie, notebook_id)
        holder = target.holder
        await asyncio.to_thread(self._db, db_factory, opening.request_handover, notebook_id, holder, target.generation)
        self.wake()
        deadline = time.monotonic() + self.handover_timeout
        while True:
            status, generation, editor, pending = await asyncio.to_thread(self._db, db_factory, opening.kernel_state,
                                                                          notebook_id)
            if status not in OPENABLE_STATES or generation != target.generation or editor == holder:
                break
            if pending is None:  # someone else claimed the kernel nobody had edited in: ask for it again
                await asyncio.to_thread(self._db, db_factory, opening.request_handover, notebook_id, holder,
                                        generation)
                self.wake()
            if time.monotonic() >= deadline:
                raise Denied(503, "The notebook is not ready", "The notebook's kernel is being prepared for you and "
                                                               "took too long; retry shortly.", "notebook_unavailable")
            await asyncio.sleep(0.1)
        if editor == holder and status in OPENABLE_STATES and generation != claims["gen"]:
            value, max_age = opening.reissue(keys, claims, generation)
            return await self.admit(db_factory, keys, notebook_id, value, fresh=True), (value, max_age)
        now = await self.admit(db_factory, keys, notebook_id, cookie, fresh=True)
        if now.mode == EDIT and not now.kernel_for:  # never an edit call in another editor's kernel
            raise Denied(503, "The notebook is not ready", "The notebook's kernel is changing hands; retry shortly.",
                         "notebook_unavailable")
        return now, None

    @staticmethod
    def _db(db_factory: Any, work: Callable[..., Any], *args: Any) -> Any:
        db: Session = db_factory()
        try:
            return work(db, *args)
        finally:
            db.close()

    def _check(self, db_factory: Any, notebook_id: str, claims: dict[str, Any]) -> Target | Denied:
        db: Session = db_factory()
        try:
            return opening.authorize(db, self.settings.secret_key, notebook_id, claims, self.node(),
                                     self.presence.owner_attached(notebook_id))
        except Denied as denied:
            return denied
        finally:
            db.close()


def notebook_proxy(app: Any) -> NotebookProxy:
    proxy: NotebookProxy | None = getattr(app.state, "notebook_proxy", None)
    if proxy is None:
        def node() -> str | None:
            controller = getattr(app.state, "notebooks", None)
            return controller.node if controller is not None else None

        def wake() -> None:
            controller = getattr(app.state, "notebooks", None)
            if controller is not None:
                controller.wake()

        proxy = app.state.notebook_proxy = NotebookProxy(app.state.settings, node, app.state.notebook_presence, wake)
    return proxy


# --- pages --------------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 36rem; color: #222">
<h1 style="font-size: 1.4rem">{title}</h1><p>{message}</p></body></html>
"""
# The notebook is shown in the console's page (an iframe on the same origin), never framed by another site
# (clickjacking: a same-site page on another port would otherwise get the notebook's cookie with it).
FRAMING = {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}
_FRAMING_RAW = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in FRAMING.items()]
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", **FRAMING}


def refusal(request: Request, denied: Denied) -> Response:
    """The refusal as a page (browsers) or the API's error shape (anything that does not accept HTML)."""
    if "text/html" in request.headers.get("accept", "text/html") or request.url.path.endswith(opening.AUTH_SEGMENT):
        page = _PAGE.format(title=html.escape(denied.title), message=html.escape(denied.message))
        return HTMLResponse(page, status_code=denied.status, headers=_NO_STORE)
    body = error_body(denied.status, denied.code, denied.message, request, retryable=denied.status == 503)
    return JSONResponse(body, status_code=denied.status, headers=_NO_STORE)


# --- the open URL -------------------------------------------------------------------------------

@router.get("/notebooks/{notebook}/_auth")
def authenticate_browser(notebook: str, request: Request, db: Db, token: str = "") -> Response:
    """Exchange the open URL's token for the notebook's cookie, then show the notebook."""
    try:
        value, max_age = opening.redeem(db, request.app.state.signing_keys, notebook, token)
    except Denied as denied:
        return refusal(request, denied)
    response = RedirectResponse(f"{opening.base_path(notebook)}/", status_code=303, headers=_NO_STORE)
    set_cookie(response, notebook, value, max_age, request.url.scheme == "https")
    return response


def set_cookie(response: Response, notebook: str, value: str, max_age: int, secure: bool) -> None:
    """The notebook's cookie: HttpOnly, SameSite=Lax, only for the notebook's path."""
    response.set_cookie(COOKIE_NAME, value, max_age=max_age, path=f"{opening.base_path(notebook)}/", httponly=True,
                        samesite="lax", secure=secure)


@router.get("/notebooks/{notebook}")
async def without_slash(notebook: str, request: Request) -> Response:
    """The notebook's cookie is scoped to `/notebooks/{notebook}/`: send the browser there."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{opening.base_path(notebook)}/{query}", status_code=307)


# --- HTTP ---------------------------------------------------------------------------------------

_BAD_PATH = Denied(400, "Invalid address", "The address has empty, '.' or '..' segments or an encoded slash: "
                                           "open the notebook again from Sailplane.", "invalid_path")
_NOT_RELAYED = Denied(404, "Not found", "There is no such page in the notebook.", "not_found")


def check_path(scope: Mapping[str, Any], path: str) -> None:
    """Refuse (Denied) a path marimo or the relay could read differently than the checks here: dot segments
    (clients and servers resolve them, so `api/./files/...` would pass a prefix check and reach
    `api/files/...`), empty segments, encoded or back slashes; and marimo's own auth routes."""
    raw = (scope.get("raw_path") or b"").lower()
    segments = path.split("/")
    if segments and segments[-1] == "":
        segments = segments[:-1]  # a trailing slash
    if (b"%2f" in raw or b"%5c" in raw or "\\" in path
            or any(segment in ("", ".", "..") for segment in segments)):
        raise _BAD_PATH
    if segments and segments[0] in NOT_RELAYED_FIRST_SEGMENTS:
        raise _NOT_RELAYED


def read_mode_allows(method: str, path: str) -> bool:
    """Whether a reader may make this call (`path`: after `/notebooks/{notebook}/`)."""
    path = path.strip("/")
    if path.startswith(READ_MODE_REFUSED_PREFIXES):
        return False
    if method in ("GET", "HEAD", "OPTIONS"):
        return True
    return path in READ_MODE_POSTS


_READ_ONLY = Denied(403, "Read only", "You can view this notebook but not change it.", "notebook_read_only")
_OWNER_ACTIVE = Denied(403, "Read only", "The notebook's owner has it open: you can view it but not change it "
                                         "while they do.", "notebook_read_only")
_HANDED_OVER = Denied(403, "Read only", "The notebook's kernel was handed over to another editor since you opened it: "
                                        "open the notebook again from Sailplane to edit it.", "notebook_read_only")


def _read_only(target: Target) -> Denied:
    if target.rights == TAKEOVER and target.owner_active:
        return _OWNER_ACTIVE
    if target.stale and target.rights != opening.READ:
        return _HANDED_OVER
    return _OWNER_ACTIVE if target.rights == TAKEOVER else _READ_ONLY


def _carries_code(body: bytes) -> bool:
    """Whether an `instantiate` call sends cell code of its own (marimo's `codes`), or cannot be read."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return True
    return not isinstance(parsed, dict) or bool(parsed.get("codes"))


def reader_session_id(secret_key: str, notebook: str, target: Target, session_id: str) -> str:
    """A reader's marimo session ID: theirs alone (keyed by the notebook and the holder), whatever they send."""
    tag = hmac.new(secret_key.encode(), f"{notebook}|{target.holder}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"r{tag}-{session_id}"


def _upstream_path(scope: Mapping[str, Any], rename: Callable[[str], str] | None = None) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    if rename is not None and query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name == SESSION_PARAM for name, _ in pairs):
            query = urlencode([(name, rename(value) if name == SESSION_PARAM else value) for name, value in pairs])
    return f"{path}?{query}" if query else path


def _named_by_connection(values: list[str]) -> set[str]:
    """The further hop-by-hop headers a message's Connection headers name (RFC 9110 7.6.1)."""
    return {name.strip().lower() for value in values for name in value.split(",")}


def _forwarded(headers: Any, request_scheme: str, client_host: str | None) -> list[tuple[str, str]]:
    dropped = NOT_FORWARDED | _named_by_connection(headers.getlist("connection"))
    out = [(k, v) for k, v in headers.items() if k.lower() not in dropped]
    out.append(("x-forwarded-proto", request_scheme))
    if client_host:
        out.append(("x-forwarded-for", client_host))
    return out


@router.api_route("/notebooks/{notebook}/{path:path}",
                  methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def relay_http(notebook: str, path: str, request: Request) -> Response:
    proxy = notebook_proxy(request.app)
    presence: NotebookPresence = request.app.state.notebook_presence
    try:
        check_path(request.scope, path)
        target = await proxy.admit(request.app.state.db.session, request.app.state.signing_keys, notebook,
                                   request.cookies.get(COOKIE_NAME))
        target, reissued = await proxy.own_kernel(request.app.state.db.session, request.app.state.signing_keys,
                                                  notebook, request.cookies.get(COOKIE_NAME), target)
    except Denied as denied:
        return refusal(request, denied)
    response = await _relay_http(proxy, presence, notebook, path, request, target)
    if reissued is not None:
        set_cookie(response, notebook, *reissued, request.url.scheme == "https")
    return response


_RELAYED = re.compile(r"/notebooks/(?P<notebook>[^/]+)/(?P<path>.*)", re.DOTALL)


class NotebookLane:
    """Pure ASGI, inside the request ID, metrics and input guard: relays notebook HTTP traffic (what `relay_http`'s
    route matches) before the console, admission control and the API's router. A notebook page is hundreds of
    requests to marimo, not to the database: they skip the API's admission slots (which they would take from API
    callers) and its routing and dependency layers (an eighth of the proxy's cost on each). The open URL's
    `_auth`, WebSockets and the slashless redirect go on to the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: Any = None  # relay_http's, for the request metrics' operation (`notebookProxy`)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _RELAYED.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or (match["path"] == opening.AUTH_SEGMENT and scope["method"] in ("GET", "HEAD")):
            await self.app(scope, receive, send)
            return
        if self.route is None:
            self.route = next(r for r in router.routes if getattr(r, "endpoint", None) is relay_http)
        scope["route"] = self.route
        scope["path_params"] = match.groupdict()
        response = await relay_http(match["notebook"], match["path"], Request(scope, receive))
        await response(scope, receive, send)


async def _relay_http(proxy: NotebookProxy, presence: NotebookPresence, notebook: str, path: str, request: Request,
                      target: Target) -> Response:
    if target.mode != EDIT and not read_mode_allows(request.method, path):
        return refusal(request, _read_only(target))
    body: bytes | None = None
    if target.mode != EDIT and path.strip("/") == INSTANTIATE:
        body = await request.body()
        if _carries_code(body):
            return refusal(request, _read_only(target))
    presence.touch(notebook)
    headers = _forwarded(request.headers, request.url.scheme, request.client.host if request.client else None)
    headers.append(("authorization", f"Bearer {target.access_token}"))
    rename = _session_renamer(proxy.settings.secret_key, notebook, target)
    if rename is not None:
        headers = [(k, rename(v) if k.lower() == SESSION_HEADER else v) for k, v in headers]
    has_body = request.method not in ("GET", "HEAD", "OPTIONS") or "content-length" in request.headers
    content: bytes | AsyncIterator[bytes] | None = body if body is not None else _body(request) if has_body else None
    raw = [(b"host", f"{target.host}:{target.port}".encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers
            if not (isinstance(content, bytes) and k.lower() == "content-length")]
    if isinstance(content, bytes):
        raw.append((b"content-length", str(len(content)).encode()))
    elif content is not None and "content-length" not in request.headers:
        raw.append((b"transfer-encoding", b"chunked"))
    upstream_request = httpcore.Request(
        request.method, f"http://{target.host}:{target.port}{_upstream_path(request.scope, rename)}",
        headers=raw, content=content, extensions={"timeout": UPSTREAM_TIMEOUTS})
    try:
        upstream = await proxy.pool.handle_async_request(upstream_request)
    except UPSTREAM_ERRORS as exc:
        log.info("notebook %s: its server at %s:%s did not answer: %r", notebook, target.host, target.port, exc)
        return refusal(request, Denied(502, "The notebook is not answering",
                                       "The notebook's server did not answer; retry shortly.", "notebook_unavailable"))
    return await _answer(upstream, presence, notebook, f"http://{target.host}:{target.port}")


async def _answer(upstream: httpcore.Response, presence: NotebookPresence, notebook: str, own: str) -> Response:
    """The browser's answer: the server's headers less those not returned (its own URL taken out of a redirect);
    a small body read whole (one send, no streaming task), a large or unsized one streamed."""
    dropped = {name.encode() for name in NOT_RETURNED | _named_by_connection(
        [v.decode("latin-1") for k, v in upstream.headers if k.lower() == b"connection"])}
    raw_headers = []
    length = None
    for name, value in upstream.headers:
        lower = name.lower()
        if lower in dropped:
            continue
        if lower == b"location" and value.startswith(own.encode()):
            value = value[len(own):] or b"/"
        elif lower == b"content-length" and value.isdigit():
            length = int(value)
        raw_headers.append((lower, value))
    response: Response
    if length is not None and length <= READ_WHOLE_BYTES:
        try:
            body = b"".join([chunk async for chunk in upstream.aiter_stream()])
        finally:
            await upstream.aclose()
        response = Response(body, status_code=upstream.status)
    else:
        response = StreamingResponse(_stream(upstream, presence, notebook), status_code=upstream.status,
                                     background=BackgroundTask(upstream.aclose))
    response.raw_headers = raw_headers + _FRAMING_RAW
    return response


def _session_renamer(secret_key: str, notebook: str, target: Target) -> Callable[[str], str] | None:
    if target.mode == EDIT:
        return None
    return lambda session_id: reader_session_id(secret_key, notebook, target, session_id)


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def _stream(upstream: httpcore.Response, presence: NotebookPresence, notebook: str) -> AsyncIterator[bytes]:
    last = time.monotonic()
    async for chunk in upstream.aiter_stream():
        if time.monotonic() - last > 1.0:  # a long stream (server-sent events) is traffic too
            presence.touch(notebook)
            last = time.monotonic()
        yield chunk


# --- WebSockets ---------------------------------------------------------------------------------

@router.websocket("/notebooks/{notebook}/{path:path}")
async def relay_websocket(websocket: WebSocket, notebook: str, path: str) -> None:
    proxy = notebook_proxy(websocket.app)
    presence: NotebookPresence = websocket.app.state.notebook_presence
    db_factory, keys = websocket.app.state.db.session, websocket.app.state.signing_keys
    cookie = websocket.cookies.get(COOKIE_NAME)
    if not _same_origin(websocket, proxy.settings.public_url):
        await websocket.close(code=1008)  # another site's page (the cookie is SameSite=Lax; this too)
        return
    try:
        check_path(websocket.scope, path)
        target = await proxy.admit(db_factory, keys, notebook, cookie)
        target, reissued = await proxy.own_kernel(db_factory, keys, notebook, cookie, target)
    except Denied:
        await websocket.close(code=1008)  # before accepting: the handshake is refused (HTTP 403)
        return
    accept_headers: list[tuple[bytes, bytes]] = []
    if reissued is not None:  # browsers take a cookie from the handshake's answer
        cookie = reissued[0]
        carrier = Response()
        set_cookie(carrier, notebook, *reissued, websocket.url.scheme == "wss")
        accept_headers = [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]
    if target.mode != EDIT and path.strip("/") not in READ_MODE_SOCKETS:
        await websocket.close(code=1008)
        return
    headers = [(k, v) for k, v in websocket.headers.items()
               if k.lower() in ("user-agent", "accept-language")]
    headers.append(("Authorization", f"Bearer {target.access_token}"))
    rename = _session_renamer(proxy.settings.secret_key, notebook, target)
    url = f"ws://{target.host}:{target.port}{_upstream_path(websocket.scope, rename)}"
    subprotocols = websocket.scope.get("subprotocols") or None
    import websockets  # on the first notebook opened: a server that has none does without it
    from websockets.asyncio.client import connect

    try:
        # No permessage-deflate on the loopback hop: compressing each message for a socket on the same host
        # costs more than it saves (the browser's hop negotiates its own).
        upstream = await connect(url, additional_headers=headers, subprotocols=subprotocols,
                                 max_size=None, open_timeout=10, proxy=None, compression=None)
    except (OSError, websockets.WebSocketException, TimeoutError) as exc:
        log.info("notebook %s: WebSocket to its server failed: %s", notebook, exc)
        await websocket.close(code=1011)
        return
    await websocket.accept(subprotocol=upstream.subprotocol, headers=accept_headers)
    presence.attach(notebook, owner=target.owner)
    tasks = [asyncio.create_task(_browser_to_server(websocket, upstream, presence, notebook)),
             asyncio.create_task(_server_to_browser(websocket, upstream, presence, notebook)),
             asyncio.create_task(_watch_access(proxy, db_factory, keys, notebook, cookie, target))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        presence.detach(notebook, owner=target.owner)
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await websocket.close(code=1000)


def _same_origin(websocket: WebSocket, public_url: str) -> bool:
    """A browser's WebSocket comes from a page of this host (or of the public URL's); others send no Origin."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = urlsplit(origin).netloc.lower()
    return host in (websocket.headers.get("host", "").lower(), urlsplit(public_url).netloc.lower())


async def _browser_to_server(websocket: WebSocket, upstream: ClientConnection, presence: NotebookPresence,
                             notebook: str) -> None:
    import websockets

    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            presence.touch(notebook)
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])
    except (WebSocketDisconnect, websockets.ConnectionClosed):
        return


async def _server_to_browser(websocket: WebSocket, upstream: ClientConnection, presence: NotebookPresence,
                             notebook: str) -> None:
    import websockets

    try:
        async for message in upstream:
            presence.touch(notebook)
            if isinstance(message, str):
                await websocket.send_text(message)
            else:
                await websocket.send_bytes(message)
    except (WebSocketDisconnect, websockets.ConnectionClosed, RuntimeError):
        return


async def _watch_access(proxy: NotebookProxy, db_factory: Any, keys: SigningKeys, notebook: str,
                        cookie: str | None, opened: Target) -> None:
    """Return (ending the relay) once the holder may no longer open the notebook, or no longer edit it (in this
    kernel) when the socket was opened in edit mode (unrenamed, in marimo's editor session; or a socket readers do
    not get)."""
    while True:
        await asyncio.sleep(max(proxy.ttl, 0.5))
        try:
            target = await proxy.admit(db_factory, keys, notebook, cookie)
        except Denied:
            return
        except Exception:  # noqa: BLE001 - a failed check (database busy) keeps the socket; the next one decides
            log.warning("notebook %s: re-checking a WebSocket's access failed", notebook, exc_info=True)
            continue
        if opened.mode == EDIT and (target.mode != EDIT or not target.kernel_for
                                    or target.generation != opened.generation):
            return
