"""Security events as notification events: the service that makes the change (identity providers, roles,
API keys, invitations, users and members) calls `record_security_event` in its own transaction, next to its
audit record (an explicit call, no registered hook). Imports no domain: callers pass plain data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy.orm import Session

from sailplane.kit.clock import utcnow
from sailplane.kit.ids import new_id
from sailplane.notifications import event_types, outbox

IDENTITY_PROVIDER_CREATED: Final = "security.identity_provider_created"
ROLE_CHANGED: Final = "security.role_changed"
API_KEY_CREATED: Final = "security.api_key_created"
IDENTITY_PROVIDER_UPDATED: Final = "security.identity_provider_updated"
IDENTITY_PROVIDER_DELETED: Final = "security.identity_provider_deleted"
API_KEY_REVOKED: Final = "security.api_key_revoked"
INVITATION_CREATED: Final = "security.invitation_created"
INVITATION_ACCEPTED: Final = "security.invitation_accepted"
USER_CREATED: Final = "security.user_created"
MEMBER_REMOVED: Final = "security.member_removed"


def record_security_event(db: Session, organization_id: str, event_type: str, data: dict[str, Any], *,
                          actor_id: str | None, team_ids: Sequence[str] = (), member_id: str | None = None) -> int:
    """One event about the organization (each change is an event of its own); `member_id`: whom it concerns (an
    own-resources rule of theirs matches), `team_ids`: the teams it touches (a team rule matches). The number of
    deliveries it made; never commits."""
    if event_types.BY_KEY[event_type].resource_type != event_types.ORGANIZATION:
        raise ValueError(f"{event_type} is not a security event")  # a bug, not input
    now = utcnow()
    event = outbox.Event(
        organization_id=organization_id, event_type=event_type, event_id=f"security:{new_id()}",
        resource_type=event_types.ORGANIZATION, resource_id=organization_id, team_ids=tuple(team_ids),
        owner_member_id=member_id, data={**data, "actorId": actor_id})
    return outbox.record(db, [event], now)
