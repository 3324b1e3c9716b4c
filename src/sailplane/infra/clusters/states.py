"""Provisioned cluster states: the lifecycle of a stack-backed resource (`infra.stacked`: values, transitions) bound
to the provisioned_clusters table, and the one compare-and-set that changes a cluster's status (`transition`).

The API moves a cluster into provisioning, updating (a config change of an active cluster) and destroying (starting
the operation); the operation's end (`clusters.operations`, run by the operation runner) moves it on to active,
destroyed or failed (an update that failed with the stack rolled back, or never started, is active again as it was).
"""

from __future__ import annotations

from typing import Final

from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.infra.stacked import (
    ACTIVE,
    DELETABLE,
    DESTROYED,
    DESTROYING,
    FAILED,
    PENDING,
    PROVISIONING,
    UPDATING,
    Lifecycle,
)

LIFECYCLE: Final = Lifecycle(ProvisionedCluster, "provisioned_clusters")
TABLE: Final = LIFECYCLE.table
transition: Final = LIFECYCLE.transition

# Running in the account: workloads may name it (an update changes it in place, EKS keeps serving meanwhile).
IN_SERVICE: Final = (ACTIVE, UPDATING)

__all__ = ["ACTIVE", "DELETABLE", "DESTROYED", "DESTROYING", "FAILED", "IN_SERVICE", "LIFECYCLE", "PENDING",
           "PROVISIONING", "TABLE", "UPDATING", "transition"]
