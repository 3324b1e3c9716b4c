"""Provisioned cluster states: the lifecycle of a stack-backed resource (`infra.stacked`: values, transitions) bound
to the provisioned_clusters table, and the one compare-and-set that changes a cluster's status (`transition`).

The API moves a cluster into provisioning and destroying (starting the operation); the operation's end
(`clusters.operations`, run by the operation runner) moves it on to active, destroyed or failed.
"""

from __future__ import annotations

from typing import Final

from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.infra.stacked import ACTIVE, DELETABLE, DESTROYED, DESTROYING, FAILED, PENDING, PROVISIONING, Lifecycle

LIFECYCLE: Final = Lifecycle(ProvisionedCluster, "provisioned_clusters")
TABLE: Final = LIFECYCLE.table
transition: Final = LIFECYCLE.transition

__all__ = ["ACTIVE", "DELETABLE", "DESTROYED", "DESTROYING", "FAILED", "LIFECYCLE", "PENDING", "PROVISIONING", "TABLE",
           "transition"]
