"""Network states: the lifecycle of a stack-backed resource (`infra.stacked`: values, transitions) bound to the
networks table, and the one compare-and-set that changes a network's status (`transition`).

An adopted VPC (`providerNetworkId` at create) starts `active`. The API moves a network into provisioning and
destroying (starting the operation); the operation's end (`networks.operations`, run by the operation runner) moves
it on to active, destroyed or failed.
"""

from __future__ import annotations

from typing import Final

from sailplane.infra.networks.models import Network
from sailplane.infra.stacked import ACTIVE, DELETABLE, DESTROYED, DESTROYING, FAILED, PENDING, PROVISIONING, Lifecycle

LIFECYCLE: Final = Lifecycle(Network, "networks")
TABLE: Final = LIFECYCLE.table
transition: Final = LIFECYCLE.transition

__all__ = ["ACTIVE", "DELETABLE", "DESTROYED", "DESTROYING", "FAILED", "LIFECYCLE", "PENDING", "PROVISIONING", "TABLE",
           "transition"]
