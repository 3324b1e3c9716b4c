"""Cluster states: the values, the transitions allowed between them, and the one compare-and-set that changes a
cluster's status.

    pending → provisioning → active → destroying → destroyed     (provisionCluster; destroyProvisionedCluster)
    provisioning, destroying → failed → provisioning | destroying  (a failed operation; its retry)
    destroyed → provisioning                                       (provisioned again)

The API moves a cluster into provisioning and
destroying (starting the operation); the operation's end (`clusters.operations`, run by the operation runner) moves
it on to active, destroyed or failed. Never a blind write: `UPDATE … WHERE status IN (sources)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.kit.clock import utcnow
from sailplane.kit.state_table import StateTable

PENDING: Final = "pending"
PROVISIONING: Final = "provisioning"
ACTIVE: Final = "active"
DESTROYING: Final = "destroying"
DESTROYED: Final = "destroyed"
FAILED: Final = "failed"
CLUSTER_STATES: Final = (PENDING, PROVISIONING, ACTIVE, DESTROYING, DESTROYED, FAILED)
# Without infrastructure of ours in the account: the record may be deleted.
DELETABLE: Final = (PENDING, DESTROYED)

TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    PROVISIONING: frozenset((PENDING, FAILED, DESTROYED)),
    ACTIVE: frozenset((PROVISIONING,)),
    DESTROYING: frozenset((ACTIVE, FAILED)),
    DESTROYED: frozenset((DESTROYING,)),
    FAILED: frozenset((PROVISIONING, DESTROYING)),
}
TABLE: Final = StateTable("provisioned_clusters", CLUSTER_STATES, TRANSITIONS)


def transition(db: Session, cluster_id: str, target: str, *, source: Sequence[str] | None = None,
               values: Mapping[str, Any] | None = None, now: datetime | None = None) -> bool:
    """Move the cluster to `target` from `source` (default: all the table allows); whether it happened. Does not
    commit; the cluster's object in `db` is updated too."""
    source = TABLE.sources(target, source)
    result = db.execute(update(ProvisionedCluster)
                        .where(ProvisionedCluster.id == cluster_id, ProvisionedCluster.status.in_(source))
                        .values({"status": target, "updated_at": now or utcnow(), **(values or {})}))
    return bool(result.rowcount)  # type: ignore[attr-defined]
