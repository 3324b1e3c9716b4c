"""Which compute backend serves a cluster, and what that backend can run.

One registration per cluster: the built-in `LOCAL` cluster is served by `LocalSailBackend` (Sail
servers as processes on this machine); a provisioned Kubernetes cluster will register its own.
Callers name the cluster and get a backend or an answer ("can it run this image?"), so nothing
above the compute boundary imports a particular backend. A node's `NodeBackends` creates each
cluster's backend once, from its `NodeResources`, and hands the same object to sessions and runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sailplane.compute.backend import ComputeBackend, ComputeError
from sailplane.compute.environments import SparkEnvironments
from sailplane.compute.local import LocalSailBackend, local_limitation
from sailplane.compute.local_notebooks import LocalNotebookBackend
from sailplane.compute.notebook_servers import NotebookBackend
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
    notebook_environment: SparkEnvironments | None = None  # where marimo runs (None: its default place)


@dataclass(frozen=True)
class Registration:
    """How to build a cluster's backend, and the settings it cannot honour (checked when a job or a
    workload configuration names the cluster, long before anything starts)."""

    create: Callable[[NodeResources], ComputeBackend]
    limitation: Callable[[str | None, Sequence[Mapping[str, Any]]], Limitation | None]
    # How to build the cluster's notebook (marimo) server backend; None: the cluster runs no notebooks.
    notebooks: Callable[[NodeResources], NotebookBackend] | None = None


def _local(resources: NodeResources) -> ComputeBackend:
    return LocalSailBackend(resources.data_dir, sandbox=resources.sandbox, environments=resources.environments)


def _local_notebooks(resources: NodeResources) -> NotebookBackend:
    return LocalNotebookBackend(resources.data_dir, sandbox=resources.sandbox,
                                environment=resources.notebook_environment)


_REGISTRATIONS: dict[str, Registration] = {
    LOCAL_CLUSTER_ID: Registration(create=_local, limitation=local_limitation, notebooks=_local_notebooks)}


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


class UnknownCluster(ComputeError):
    """No backend of this node serves the cluster a record names."""

    def __init__(self, cluster_id: str) -> None:
        super().__init__(f"no compute backend of this node serves the cluster {cluster_id}")
        self.cluster_id = cluster_id


class NodeBackends:
    """This node's backends, one per registered cluster, each created on first use and kept (the
    session controller and the run dispatcher share them: a backend tracks what it started).
    Thread-safe: the session and run loops run in threads of their own."""

    def __init__(self, resources: NodeResources | None, backends: Mapping[str, ComputeBackend] | None = None) -> None:
        """`backends` serves clusters with backends made elsewhere (tests; None: only registered ones)."""
        self.resources = resources
        self._backends: dict[str, ComputeBackend] = dict(backends or {})
        self._notebooks: dict[str, NotebookBackend] = {}
        self._lock = threading.Lock()

    def notebooks(self, cluster_id: str) -> NotebookBackend:
        """The backend running notebook (marimo) servers on `cluster_id` (UnknownCluster when none of this
        node does)."""
        with self._lock:
            backend = self._notebooks.get(cluster_id)
            if backend is not None:
                return backend
            found = _REGISTRATIONS.get(cluster_id)
            if found is None or found.notebooks is None or self.resources is None:
                raise UnknownCluster(cluster_id)
            backend = self._notebooks[cluster_id] = found.notebooks(self.resources)
            return backend

    def all_notebooks(self) -> list[NotebookBackend]:
        """Every notebook backend this node has (created now when not yet): to find orphans."""
        ids = set(self._notebooks) | ({c for c, r in _REGISTRATIONS.items() if r.notebooks is not None}
                                      if self.resources is not None else set())
        found: dict[int, NotebookBackend] = {}
        for cluster_id in sorted(ids):
            backend = self.notebooks(cluster_id)
            found.setdefault(id(backend), backend)
        return list(found.values())

    def get(self, cluster_id: str) -> ComputeBackend:
        """The backend serving `cluster_id` (UnknownCluster when none of this node does)."""
        with self._lock:
            backend = self._backends.get(cluster_id)
            if backend is not None:
                return backend
            found = _REGISTRATIONS.get(cluster_id)
            if found is None or self.resources is None:
                raise UnknownCluster(cluster_id)
            backend = self._backends[cluster_id] = found.create(self.resources)
            return backend

    def all(self) -> list[ComputeBackend]:
        """Every backend this node serves a cluster with (created now when not yet): to find what they
        run that nobody knows about."""
        ids = set(self._backends) | (set(_REGISTRATIONS) if self.resources is not None else set())
        found: dict[int, ComputeBackend] = {}
        for cluster_id in sorted(ids):
            backend = self.get(cluster_id)
            found.setdefault(id(backend), backend)
        return list(found.values())
