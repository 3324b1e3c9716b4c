"""Opening a notebook in a browser: the single-use open URL, the cookie it is exchanged for, and who the
notebook proxy (`proxy.py`) lets through to the notebook's marimo server.

1. `openNotebook` (`open_url`): a JWT signed with the gateway's key (`gateway.tokens.SigningKeys`, so it is
   verifiable with /.well-known/jwks.json), audience OPEN_AUDIENCE, valid OPEN_TTL_SECONDS, naming the
   notebook, organization, caller and `mode`: the most the caller may do (`edit` for the notebook's owner,
   `takeover` for others who may change its source, `read` for everyone else who sees it), inside the URL
   `{public URL}/notebooks/{notebook}/_auth?token=...`.
2. The browser visits it (`redeem`): the token is checked (signature, audience, expiry, this notebook) and its
   `jti` recorded in `notebook_open_tokens`, so the URL works once on any node; the caller's access is
   checked again; the answer is a second signed token (COOKIE_AUDIENCE, at most COOKIE_MAX_SECONDS) set as
   an HttpOnly cookie scoped to `/notebooks/{notebook}/`, bound to the notebook's current run (`started_at`).
3. Every proxied request and WebSocket (`authorize`) re-reads the notebook and the caller: the cookie opens
   only its own notebook, only while the caller still sees it (`authz.notebooks_visible_to`) and only while
   that run of it is running, idle or detached.

The mode (`Target.now`): the owner edits. Anyone else edits only while the owner is not active (no WebSocket
of theirs attached, `presence.NotebookPresence.owner_attached`), as the API promises ("read-only mode if the
owner is active"), and only if they may change the source anyway (`service.may_edit_source`: Viewers of the
notebook's teams read it only); then they take over marimo's editor session, as a second marimo tab takes
over an orphaned one. Everyone else, and they while the owner is active, read. The claim is a ceiling, the
database and the owner's presence decide now, so an owner coming back ends a member's editing.

The kernel is the editor's alone (`Target.kernel_for`): the marimo server runs one editor's code, so when the
one who edits changes (owner -> member, member -> owner, member -> member) the proxy asks the notebook controller
for a new kernel (`request_handover`: `kernel_handover_to`) and waits for it; the controller saves the source,
replaces the marimo server (an empty working directory) and bumps `kernel_generation`, and the new editor's cookie
is issued again for the new generation (`reissue`). A cookie carries the generation it was issued for (`gen`): one
of an earlier generation (its holder's kernel was handed to someone since, or it was taken by someone else while
they waited) gives read mode only, whatever its holder may do, until they open the notebook again from Sailplane
(a fresh link takes the current generation). So a stale tab never takes the kernel back by itself, and nobody's
edit calls reach a kernel another editor's code ran in.

Refusals are `Denied` (status, title, message): the proxy shows them as a small page, never the notebook.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sailplane.gateway.tokens import SigningKeys, TokenError, TokenExpired
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import checkpoint
from sailplane.kit.errors import ApiError, conflict
from sailplane.workloads.access import account_principal, member_principal
from sailplane.workloads.notebooks import service
from sailplane.workloads.notebooks.models import Notebook, NotebookOpenToken
from sailplane.workloads.notebooks.states import OPENABLE_STATES

OPEN_AUDIENCE: Final = "sailplane-notebook"
COOKIE_AUDIENCE: Final = "sailplane-notebook-cookie"
OPEN_TTL_SECONDS: Final = 300
COOKIE_MAX_SECONDS: Final = 12 * 3600
COOKIE_NAME: Final = "sailplane_notebook"
AUTH_SEGMENT: Final = "_auth"
EDIT: Final = "edit"
TAKEOVER: Final = "takeover"  # may edit while the owner is not active
READ: Final = "read"
_RIGHTS: Final = (READ, TAKEOVER, EDIT)  # least first: a cookie's claim caps what the database now allows
MEMBER, SERVICE_ACCOUNT = "member", "service_account"
_CLAIMS: Final = ("sub", "kind", "org", "nb", "mode")


def base_path(notebook_id: str) -> str:
    """Where the notebook's marimo app lives on the API's host (marimo runs with this `--base-url`, no slash)."""
    return f"/notebooks/{notebook_id}"


@dataclass(frozen=True)
class Denied(Exception):
    """The proxy refuses: `status` (401 credentials, 404 no such notebook for the caller, 409 not running,
    503 its server is unknown), a page title and a message safe to show."""

    status: int
    title: str
    message: str
    code: str = "notebook_access_denied"


@dataclass(frozen=True)
class Target:
    """Where an admitted request goes: the notebook's marimo server and its access token, and the mode (EDIT or
    READ) given the holder's `rights` (EDIT, TAKEOVER or READ) and whether the owner was active."""

    host: str
    port: int
    access_token: str
    mode: str
    holder: str = ""  # "{kind}:{id}" of the cookie's holder
    rights: str = READ
    generation: int = 0  # the notebook's kernel generation now
    editor: str | None = None  # whose edit session the kernel is (None: nobody edited in it yet)
    stale: bool = False  # the cookie is of an earlier kernel generation: read mode only
    owner_active: bool = False  # as `now` was told

    @property
    def owner(self) -> bool:
        """The notebook's owner, editing: their WebSockets make the owner active."""
        return self.rights == EDIT and self.mode == EDIT

    @property
    def kernel_for(self) -> bool:
        """Whether the kernel is this holder's (edit mode needs it): when not, it is handed over first."""
        return self.editor == self.holder

    def now(self, owner_active: bool) -> Target:
        """This target with the mode for whether the owner is active now."""
        mode = EDIT if not self.stale and (self.rights == EDIT or (self.rights == TAKEOVER and not owner_active)) \
            else READ
        return self if (mode, owner_active) == (self.mode, self.owner_active) \
            else replace(self, mode=mode, owner_active=owner_active)


def _subject(principal: Principal) -> tuple[str, str]:
    if principal.member is not None:
        return MEMBER, principal.member.id
    account = principal.identity.service_account
    assert account is not None
    return SERVICE_ACCOUNT, account.id


def _rights(db: Session, principal: Principal, notebook: Notebook) -> str:
    if authz.owns_notebook(principal, notebook):
        return EDIT
    return TAKEOVER if service.may_edit_source(db, principal, notebook) else READ


def _run_marker(notebook: Notebook) -> str | None:
    return notebook.started_at.isoformat() if notebook.started_at is not None else None


def _not_openable(notebook: Notebook) -> ApiError:
    return conflict("notebook_not_running", f"The notebook is {notebook.status}: only a running, idle or detached "
                                            "notebook can be opened.")


# --- 1. the open URL ----------------------------------------------------------------------------

def open_url(db: Session, principal: Principal, notebook_id: str, keys: SigningKeys, public_url: str) -> str:
    """The single-use URL that lets the caller's browser into the notebook (404 when they cannot see it,
    409 naming the state unless it is running, idle or detached)."""
    notebook = service.get_notebook(db, principal, notebook_id)
    if notebook.status not in OPENABLE_STATES:
        raise _not_openable(notebook)
    kind, subject = _subject(principal)
    mode = _rights(db, principal, notebook)
    token = keys.sign({"sub": subject, "kind": kind, "org": notebook.organization_id, "nb": notebook.id,
                       "mode": mode, "gen": notebook.kernel_generation}, OPEN_AUDIENCE, OPEN_TTL_SECONDS)
    return f"{public_url.rstrip('/')}{base_path(notebook.id)}/{AUTH_SEGMENT}?token={token}"


# --- 2. the URL visited -------------------------------------------------------------------------

_LINK_REFUSED = "This notebook link is not valid"


def _open_claims(keys: SigningKeys, token: str, notebook_id: str) -> dict[str, Any]:
    try:
        claims = keys.decode(token, OPEN_AUDIENCE, _CLAIMS)
    except TokenExpired as exc:
        raise Denied(401, _LINK_REFUSED, "The link has expired: open the notebook again.") from exc
    except TokenError as exc:
        raise Denied(401, _LINK_REFUSED, "The link is not a valid notebook link.") from exc
    if claims["nb"] != notebook_id:
        raise Denied(401, _LINK_REFUSED, "The link is for another notebook.")
    if claims["mode"] not in _RIGHTS:
        raise Denied(401, _LINK_REFUSED, "The link is not a valid notebook link.")
    return claims


def redeem(db: Session, keys: SigningKeys, notebook_id: str, token: str) -> tuple[str, int]:
    """Check an open URL's token and use it up; the cookie value (a signed token) and its lifetime in
    seconds. Raises Denied. Flushes the used token's row: the request commits it before answering."""
    claims = _open_claims(keys, token, notebook_id)
    if db.get(NotebookOpenToken, claims["jti"]) is not None:
        raise Denied(401, _LINK_REFUSED, "The link was already used: open the notebook again.")
    db.add(NotebookOpenToken(jti=claims["jti"], notebook_id=notebook_id, member_id=claims["sub"],
                             expires_at=datetime.fromtimestamp(claims["exp"], UTC)))
    try:
        db.flush()
    except IntegrityError as exc:  # the same link opened on another node at the same moment
        db.rollback()
        raise Denied(401, _LINK_REFUSED, "The link was already used: open the notebook again.") from exc
    db.execute(delete(NotebookOpenToken).where(NotebookOpenToken.expires_at < utcnow() - timedelta(minutes=5)))
    notebook, _ = _admit(db, notebook_id, claims)
    # The generation now, not the link's: opening the notebook is its holder's deliberate act (see the module).
    value = keys.sign({"sub": claims["sub"], "kind": claims["kind"], "org": claims["org"], "nb": notebook_id,
                       "mode": claims["mode"], "run": _run_marker(notebook), "gen": notebook.kernel_generation},
                      COOKIE_AUDIENCE, COOKIE_MAX_SECONDS)
    return value, COOKIE_MAX_SECONDS


def reissue(keys: SigningKeys, claims: dict[str, Any], generation: int) -> tuple[str, int]:
    """The cookie again for the kernel generation handed to its holder, expiring when it did; (value, max age)."""
    now = time.time()
    left = max(int(claims["exp"] - now), 1)
    body = {name: claims[name] for name in (*_CLAIMS, "run")}
    return keys.sign({**body, "gen": generation}, COOKIE_AUDIENCE, left, now=now), left


# --- 3. every proxied request -------------------------------------------------------------------

def cookie_claims(keys: SigningKeys, value: str | None, notebook_id: str) -> dict[str, Any]:
    """The claims of a notebook cookie for this notebook (no database read); Denied otherwise."""
    if not value:
        raise Denied(401, "Open the notebook from Sailplane", "This page needs a notebook link: open the notebook "
                                                              "again from Sailplane.")
    try:
        claims = keys.decode(value, COOKIE_AUDIENCE, (*_CLAIMS, "run", "gen"))
    except TokenError as exc:
        raise Denied(401, "Open the notebook from Sailplane", "Your access to this notebook has ended: open it "
                                                              "again from Sailplane.") from exc
    if claims["nb"] != notebook_id:
        raise Denied(404, "Notebook not found", "The notebook was not found.")
    if claims["mode"] not in _RIGHTS or not isinstance(claims["gen"], int) or isinstance(claims["gen"], bool):
        raise Denied(401, "Open the notebook from Sailplane", "Your access to this notebook has ended: open it "
                                                              "again from Sailplane.")
    return claims


def authorize(db: Session, secret_key: str, notebook_id: str, claims: dict[str, Any], node: str | None,
              owner_active: bool) -> Target:
    """Where the holder of these (cookie) claims may go now: the notebook's marimo server, in the mode for
    `owner_active`. Denied when the holder no longer sees the notebook (404), is gone (401), the notebook is
    not running (409) or ran again since the cookie was set (401), or its server is not known or not on this
    node (503: a marimo server listens on its node's loopback only)."""
    notebook, principal = _admit(db, notebook_id, claims)
    if claims.get("run") != _run_marker(notebook):
        raise Denied(401, "The notebook was restarted", "The notebook was restarted since you opened it: open it "
                                                        "again from Sailplane.")
    if notebook.server_host is None or notebook.server_port is None or notebook.server_secret is None:
        raise Denied(503, "The notebook is not reachable", "The notebook's server is not known yet; retry shortly.",
                     "notebook_unavailable")
    if node is None or notebook.node != node:
        raise Denied(503, "The notebook is not reachable", "The notebook runs on another Sailplane node than the one "
                                                           "that answered; open it through that node.",
                     "notebook_unavailable")
    rights = min(claims["mode"], _rights(db, principal, notebook), key=_RIGHTS.index)
    target = Target(notebook.server_host, notebook.server_port, Encryptor(secret_key).decrypt(notebook.server_secret),
                    READ, holder_of(claims), rights, notebook.kernel_generation, notebook.kernel_editor,
                    claims["gen"] != notebook.kernel_generation)
    return target.now(owner_active)


def holder_of(claims: dict[str, Any]) -> str:
    """Who holds these cookie claims, as `kernel_editor` names them."""
    return f"{claims['kind']}:{claims['sub']}"


def request_handover(db: Session, notebook_id: str, holder: str, generation: int) -> bool:
    """Ask the notebook controller for a kernel of `holder`'s own, replacing the kernel of `generation` (one
    conditional UPDATE: nothing when it was replaced meanwhile or the notebook is no longer open). Commits.
    The last asker before the controller acts gets it: the others' cookies are then of an earlier generation."""
    result = db.execute(update(Notebook).where(Notebook.id == notebook_id,
                                               Notebook.kernel_generation == generation,
                                               Notebook.status.in_(OPENABLE_STATES))
                        .values(kernel_handover_to=holder))
    checkpoint(db)  # the controller (its own connection) must see the request while this proxy request waits
    return bool(result.rowcount)  # type: ignore[attr-defined]


def kernel_state(db: Session, notebook_id: str) -> tuple[str | None, int, str | None, str | None]:
    """(status, kernel generation, kernel editor, pending handover) of the notebook now (status None: gone)."""
    row = db.execute(select(Notebook.status, Notebook.kernel_generation, Notebook.kernel_editor,
                            Notebook.kernel_handover_to).where(Notebook.id == notebook_id)).first()
    return (None, 0, None, None) if row is None else (row[0], row[1], row[2], row[3])


def _admit(db: Session, notebook_id: str, claims: dict[str, Any]) -> tuple[Notebook, Principal]:
    """The notebook and its caller as the database says now, if they may open it."""
    load = member_principal if claims["kind"] == MEMBER else account_principal
    principal = load(db, claims["org"], claims["sub"])
    if principal is None:
        raise Denied(401, "Access ended", "Your access to this organization has ended.")
    try:
        notebook = service.get_notebook(db, principal, notebook_id)
    except ApiError as exc:
        raise Denied(404, "Notebook not found", "The notebook was not found.") from exc
    if notebook.status not in OPENABLE_STATES:
        raise Denied(409, f"The notebook is {notebook.status}", _not_openable(notebook).message,
                     "notebook_not_running")
    return notebook, principal

