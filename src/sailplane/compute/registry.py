"""Which compute backend serves a cluster, and what that backend can run.

One registration per cluster: the built-in `LOCAL` cluster is served by `LocalSailBackend` (Sail
servers as processes on this machine); a provisioned Kubernetes cluster will register its own.
Callers name the cluster and get a backend or an answer ("can it run this image?"), so nothing
above the compute boundary imports a particular backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sailplane.compute.backend import ComputeBackend
from sailplane.compute.environments import SparkEnvironments
from sailplane.compute.local import LocalSailBackend, local_limitation
from sailplane.compute.sandbox import Sandbox

LOCAL_CLUSTER_ID = "LOCAL"

Limitation = tuple[str, str]
"""(field path under a workload's `sail`/`lakesail` settings, why the cluster cannot honour it)."""


@dataclass(frozen=True)
class NodeResources:
    """What this node gives any backend it creates: its data directory, the workload sandbox
    (None: unconfined) and the Spark line environments."""

    data_dir: Path
    sandbox: Sandbox | None
    environments: SparkEnvironments


@dataclass(frozen=True)
class Registration:
    """How to build a cluster's backend, and the settings it cannot honour (checked when a job or a
    workload configuration names the cluster, long before anything starts)."""

    create: Callable[[NodeResources], ComputeBackend]
    limitation: Callable[[str | None, Sequence[Mapping[str, Any]]], Limitation | None]


def _local(resources: NodeResources) -> ComputeBackend:
    return LocalSailBackend(resources.data_dir, sandbox=resources.sandbox, environments=resources.environments)


_REGISTRATIONS: dict[str, Registration] = {LOCAL_CLUSTER_ID: Registration(create=_local, limitation=local_limitation)}


def register(cluster_id: str, registration: Registration) -> None:
    """Serve `cluster_id` with another backend (a provisioned cluster once it is up)."""
    _REGISTRATIONS[cluster_id] = registration


def registration(cluster_id: str) -> Registration | None:
    """The cluster's registration; None for a cluster no backend of this node serves."""
    return _REGISTRATIONS.get(cluster_id)


def create_backend(cluster_id: str, resources: NodeResources) -> ComputeBackend:
    """A backend for the cluster (KeyError for a cluster no backend of this node serves)."""
    return _REGISTRATIONS[cluster_id].create(resources)


def limitation(cluster_id: str, image_uri: str | None, libraries: Sequence[Mapping[str, Any]]) -> Limitation | None:
    """The first of these settings the cluster's backend cannot honour; None when it can (or when no
    backend of this node serves the cluster: its own provisioning validates it)."""
    found = _REGISTRATIONS.get(cluster_id)
    return found.limitation(image_uri, libraries) if found is not None else None
