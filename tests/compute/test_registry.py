"""The per-cluster backend registry: the built-in LOCAL cluster is one registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from sailplane.compute import registry
from sailplane.compute.backend import ComputeBackend
from sailplane.compute.environments import SparkEnvironments
from sailplane.compute.local import LocalSailBackend, installed_sail_version


def test_the_local_cluster_is_served_by_the_local_backend(tmp_path: Path) -> None:
    resources = registry.NodeResources(tmp_path, None, SparkEnvironments())
    backend = registry.create_backend(registry.LOCAL_CLUSTER_ID, resources)
    assert isinstance(backend, LocalSailBackend) and isinstance(backend, ComputeBackend)
    assert backend.data_dir == tmp_path.resolve() and backend.sandbox is None


def test_limitations_are_answered_per_cluster() -> None:
    version = installed_sail_version()
    local = registry.LOCAL_CLUSTER_ID
    assert registry.limitation(local, f"public.ecr.aws/lakesail/sail:{version}", []) is None
    assert registry.limitation(local, "public.ecr.aws/lakesail/sail:0.0.1", [])[0] == "lakesailImageUri"  # type: ignore[index]
    assert registry.limitation(local, None, [{"whl": "s3://bucket/x.whl"}]) == (
        "libraries.0.whl", "the local cluster fetches libraries over http(s); s3:// needs a Kubernetes cluster "
        "with a cloud connection")
    # A cluster no backend of this node serves is validated by its own provisioning, not here.
    assert registry.registration("CLUSTER_ELSEWHERE") is None
    assert registry.limitation("CLUSTER_ELSEWHERE", "public.ecr.aws/lakesail/sail:0.0.1", []) is None


def test_a_node_creates_each_clusters_backend_once(tmp_path: Path) -> None:
    backends = registry.NodeBackends(registry.NodeResources(tmp_path, None, SparkEnvironments()))
    local = backends.get(registry.LOCAL_CLUSTER_ID)
    assert isinstance(local, LocalSailBackend) and backends.get(registry.LOCAL_CLUSTER_ID) is local
    assert local in backends.all()
    with pytest.raises(registry.UnknownCluster, match="CLUSTER_ELSEWHERE"):
        backends.get("CLUSTER_ELSEWHERE")
    given = registry.NodeBackends(None, {registry.LOCAL_CLUSTER_ID: local})
    assert given.get(registry.LOCAL_CLUSTER_ID) is local and given.all() == [local]
