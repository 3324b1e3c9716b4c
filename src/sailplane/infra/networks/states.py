"""Network states: the values, the transitions allowed between them, and the one compare-and-set that changes a
network's status.

    pending → provisioning → active → destroying → destroyed     (provisionNetwork; destroyNetwork)
    provisioning, destroying → failed → provisioning | destroying  (a failed operation; its retry)
    destroyed → provisioning                                       (provisioned again)

An adopted VPC (`providerNetworkId` at create) starts `active`. The API moves a network into provisioning and
destroying (starting the operation); the operation's end (`networks.operations`, run by the operation runner) moves
it on to active, destroyed or failed. Never a blind write: `UPDATE … WHERE status IN (sources)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from sailplane.infra.networks.models import Network
from sailplane.kit.clock import utcnow
from sailplane.kit.state_table import StateTable

PENDING: Final = "pending"
PROVISIONING: Final = "provisioning"
ACTIVE: Final = "active"
DESTROYING: Final = "destroying"
DESTROYED: Final = "destroyed"
FAILED: Final = "failed"
NETWORK_STATES: Final = (PENDING, PROVISIONING, ACTIVE, DESTROYING, DESTROYED, FAILED)
# Without infrastructure of ours in the account: the record may be deleted.
DELETABLE: Final = (PENDING, DESTROYED)

TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    PROVISIONING: frozenset((PENDING, FAILED, DESTROYED)),
    ACTIVE: frozenset((PROVISIONING,)),
    DESTROYING: frozenset((ACTIVE, FAILED)),
    DESTROYED: frozenset((DESTROYING,)),
    FAILED: frozenset((PROVISIONING, DESTROYING)),
}
TABLE: Final = StateTable("networks", NETWORK_STATES, TRANSITIONS)


def transition(db: Session, network_id: str, target: str, *, source: Sequence[str] | None = None,
               values: Mapping[str, Any] | None = None, now: datetime | None = None) -> bool:
    """Move the network to `target` from `source` (default: all the table allows); whether it happened. Does not
    commit; the network's object in `db` is updated too."""
    source = TABLE.sources(target, source)
    result = db.execute(update(Network).where(Network.id == network_id, Network.status.in_(source))
                        .values({"status": target, "updated_at": now or utcnow(), **(values or {})}))
    return bool(result.rowcount)  # type: ignore[attr-defined]
