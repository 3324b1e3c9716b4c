"""The gateway's holder check against the database: may each token's holder still use its session?

A session token names its session (`sid`), its holder (`sub`: a member or service account ID) and the
credential it was issued through (`via`: `login:<id>` or `key:<id>`). A call is refused once
- the session is closed or gone (UNAUTHENTICATED),
- that login is signed out, revoked or expired, or the account is deactivated or deleted, or that API
  key is revoked or deleted (UNAUTHENTICATED),
- the holder is no longer an active member of the session's organization, or the service account is
  deleted (UNAUTHENTICATED),
- or the holder may no longer use the session by `auth.authz.may_use` (PERMISSION_DENIED): the owner left
  the session's team, an organization admin lost the role.

Blocking: the gateway runs it in a worker thread and caches its answers (gateway/access.py).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from sailplane.gateway.access import Claims
from sailplane.gateway.denied import GatewayDenied
from sailplane.iam.auth import authz
from sailplane.iam.auth.models import Login, User
from sailplane.iam.auth.principal import Identity, Principal, key_usable, login_usable, resolve_principal
from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.kit.errors import ApiError
from sailplane.tenancy.org.models import Member, Organization
from sailplane.tenancy.service_accounts.models import ApiKey, ServiceAccount
from sailplane.workloads import access
from sailplane.workloads.models import InteractiveSession
from sailplane.workloads.notebooks.models import Notebook
from sailplane.workloads.session_states import FAILED, OPEN_STATES


class DatabaseHolderCheck:
    """`HolderCheck` for the gateway: one database session per batch of holders."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, batch: list[Claims]) -> list[GatewayDenied | None]:
        with self.db.session() as db:
            return [_check(db, claims) for claims in batch]


def _check(db: Session, claims: Claims) -> GatewayDenied | None:
    sid = claims["sid"]
    session = db.get(InteractiveSession, sid)
    if session is None or session.organization_id != claims.get("org"):
        return GatewayDenied.unauthenticated(f"session {sid} is not open (closed or unknown); create a new session")
    if session.status not in OPEN_STATES:
        what = "has failed" if session.status == FAILED else "was closed"
        detail = f" ({session.status_message})" if session.status_message else ""
        return GatewayDenied.unauthenticated(f"session {sid} {what}{detail}; create a new session")
    try:
        principal = _holder(db, claims, session.organization_id)
    except _Refused as refused:
        return GatewayDenied.unauthenticated(str(refused))
    if not authz.may_use(principal, session):
        return GatewayDenied.permission_denied(
            f"the holder of this session token may no longer use session {sid} (they left its team, or lost "
            "the role that allowed it)")
    return None


class _Refused(Exception):
    """The token's credential or holder is no longer valid; the message is for the client."""


def _holder(db: Session, claims: Claims, organization_id: str) -> Principal:
    """The token's holder as a principal with grants read now, if its credential is still good."""
    via = claims.get("via")
    subject = claims["sub"]
    now = utcnow()
    if not isinstance(via, str):
        raise _Refused("this session token does not name the sign-in it was issued through; issue a new token")
    if via.startswith(access.VIA_LOGIN):
        login = db.get(Login, via.removeprefix(access.VIA_LOGIN))
        if login is None or not login_usable(login, now):
            raise _Refused("the sign-in this session token was issued through has ended (signed out, revoked or "
                           "expired); sign in again and issue a new token")
        user = db.get(User, login.user_id)
        if user is None or user.status != "active":
            raise _Refused("the account this session token was issued to is deactivated or deleted")
        member = db.get(Member, subject)
        org = db.get(Organization, organization_id)
        if member is None or org is None or member.user_id != user.id or member.organization_id != organization_id \
                or member.status != "active":
            raise _Refused("the holder of this session token is no longer a member of the organization")
        return resolve_principal(db, Identity(kind="user", user=user, login=login), organization_id, (member, org),
                                 fresh=True)
    if via.startswith(access.VIA_API_KEY):
        key = db.get(ApiKey, via.removeprefix(access.VIA_API_KEY))
        if key is None or key.service_account_id != subject or not key_usable(key, now):
            raise _Refused("the API key this session token was issued with was revoked or deleted")
        account = db.get(ServiceAccount, subject)
        if account is None or account.organization_id != organization_id:
            raise _Refused("the service account this session token was issued to was deleted")
        try:
            return resolve_principal(db, Identity(kind="service_account", service_account=account, api_key=key),
                                     organization_id, fresh=True)
        except ApiError as exc:
            raise _Refused("the service account's organization is gone") from exc
    if via.startswith(access.VIA_NOTEBOOK):
        # The kernel of a notebook: valid while that notebook still runs on this session, for its owner.
        notebook = db.get(Notebook, via.removeprefix(access.VIA_NOTEBOOK))
        if notebook is None or notebook.session_id != claims["sid"] or notebook.member_id != subject:
            raise _Refused("the notebook this session token was issued to no longer runs on this session")
        principal = access.member_principal(db, organization_id, subject)
        if principal is None:
            raise _Refused("the owner of this notebook is no longer an active member of the organization")
        return principal
    raise _Refused("this session token names an unknown kind of sign-in; issue a new token")
