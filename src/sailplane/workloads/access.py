"""Who may still use a session, and what happens to sessions when that changes.

One rule (`auth.authz.may_use`) decides at token issue (`service.issue_token`), on gateway calls (`holders.py`,
through the gateway's short cache) and when access is taken away: the owner may use their session
while they can still see its team; an organization admin (the Owner and Admin roles: CanManageSessions
over every team) may use any session of the organization.

Services that take access away (removing a member from a team or the organization, deactivating
them, changing their roles or policy, deleting a service account) call `end_lost_sessions` inside
their own transaction, so the sessions the owner may no longer use are closed exactly when the change
commits. After the commit the session controllers of this process are told at once (`watch`): the
gateway refuses those sessions' calls from then on and their Sail instances are released. Other
nodes learn it from the database on their next controller tick.

This module imports no gateway and no other domain's service, so any service can call it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from sailplane.iam.auth import authz
from sailplane.iam.auth.models import User
from sailplane.iam.auth.principal import Identity, Principal, resolve_principal
from sailplane.kit.clock import utcnow
from sailplane.kit.context import RequestContext
from sailplane.kit.errors import ApiError
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member, Organization
from sailplane.tenancy.service_accounts.models import ServiceAccount
from sailplane.workloads import session_states
from sailplane.workloads.models import InteractiveSession
from sailplane.workloads.session_states import CLOSED, OPEN_STATES

log = logging.getLogger(__name__)

ACCESS_REVOKED = "access_revoked"
"""`terminationReason` of a session closed because its owner lost access to it."""
VIA_LOGIN, VIA_API_KEY, VIA_NOTEBOOK = "login:", "key:", "notebook:"
"""Prefixes of a session token's `via` claim: the login or API key it was issued through, or the notebook
whose kernel holds it (issued by the notebook controller to the notebook's owner)."""

Ended = list[tuple[str, str]]  # (session ID, why), as the controller reports it to gateway clients
_CLOSED_KEY = "sailplane.sessions_closed_for_access"
_watchers: list[Callable[[Ended], None]] = []
_watchers_lock = threading.Lock()


# --- principals as the database says now --------------------------------------------------------


def member_principal(db: Session, organization_id: str, member_id: str) -> Principal | None:
    """The member as a principal with grants read now; None once they are gone, deactivated or disabled."""
    row = db.execute(select(Member, User, Organization).join(User, User.id == Member.user_id)
                     .join(Organization, Organization.id == Member.organization_id)
                     .where(Member.id == member_id, Member.organization_id == organization_id)).first()
    if row is None:
        return None
    member, user, org = row
    if member.status != "active" or user.status != "active":
        return None
    return resolve_principal(db, Identity(kind="user", user=user), organization_id, (member, org), fresh=True)


def account_principal(db: Session, organization_id: str, account_id: str) -> Principal | None:
    """The service account as a principal with its policy read now; None once it is deleted."""
    account = db.get(ServiceAccount, account_id)
    if account is None or account.organization_id != organization_id:
        return None
    try:
        return resolve_principal(db, Identity(kind="service_account", service_account=account), organization_id,
                                 fresh=True)
    except ApiError:
        return None


# --- closing what was lost ----------------------------------------------------------------------


def end_lost_sessions(db: Session, ctx: RequestContext | None, actor: Principal | None, organization_id: str, *,
                      members: Iterable[str] = (), service_accounts: Iterable[str] = (), why: str) -> list[str]:
    """Close the open sessions these owners have in the organization but may no longer use.

    Call it in the transaction that takes the access away, after the change is flushed, so both commit
    (or roll back) together. `why` becomes the sessions' statusMessage. Returns the closed sessions' IDs.
    """
    member_ids, account_ids = sorted(set(members)), sorted(set(service_accounts))
    if not member_ids and not account_ids:
        return []
    owners = []
    if member_ids:
        owners.append(InteractiveSession.member_id.in_(member_ids))
    if account_ids:
        owners.append(InteractiveSession.service_account_id.in_(account_ids))
    sessions = list(db.scalars(select(InteractiveSession).where(
        InteractiveSession.organization_id == organization_id, InteractiveSession.status.in_(OPEN_STATES),
        or_(*owners)).order_by(InteractiveSession.id)))
    principals: dict[str, Principal | None] = {}
    closed: list[str] = []
    now = utcnow()
    for session in sessions:
        owner = session.member_id or session.service_account_id
        assert owner is not None
        if owner not in principals:
            principals[owner] = (member_principal(db, organization_id, owner) if session.member_id is not None
                                 else account_principal(db, organization_id, owner))
        principal = principals[owner]
        if principal is not None and authz.may_use(principal, session):
            continue
        if session_states.transition(
                db, session.id, CLOSED, source=OPEN_STATES, now=now, synchronize=False,
                values={"termination_reason": ACCESS_REVOKED, "status_message": why,
                        "updated_by": actor.actor_id if actor is not None else None}):
            closed.append(session.id)
            audit.record(db, ctx, actor, "session.close", "session", session.id, organization_id=organization_id,
                         actor_type=None if actor is not None else "system",
                         details={"reason": ACCESS_REVOKED, "ownerId": owner})
    if closed:
        db.info.setdefault(_CLOSED_KEY, []).extend((sid, why) for sid in closed)
    return closed


# --- telling this process's controllers after the commit -------------------------------------------


def watch(callback: Callable[[Ended], None]) -> None:
    """Call `callback` with the sessions `end_lost_sessions` closed, once their transaction commits."""
    with _watchers_lock:
        _watchers.append(callback)


def unwatch(callback: Callable[[Ended], None]) -> None:
    with _watchers_lock:
        if callback in _watchers:
            _watchers.remove(callback)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    ended: Ended | None = session.info.pop(_CLOSED_KEY, None)
    if not ended:
        return
    with _watchers_lock:
        callbacks = list(_watchers)
    for callback in callbacks:
        try:
            callback(list(ended))
        except Exception:  # a controller's trouble must not fail the request that already committed
            log.exception("telling a session controller about closed sessions failed")


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_CLOSED_KEY, None)
