"""EC2 instance types as Kubernetes (EKS) nodes: how many pods fit and how much CPU is left to them.

`maxPods` is EKS's formula for the VPC CNI without prefix delegation (ENIs × (IPv4 addresses per ENI − 1) + 2,
capped at 110 below 30 vCPUs and 250 above, as EKS's max-pods calculator does); `allocatableMilliCpu` subtracts
the kubelet's CPU reservation of EKS's AMIs (6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of
the rest). `METADATA` is what Sailplane reserves for system pods when it sizes clusters: estimates, per provider.
"""

from __future__ import annotations

from typing import Any

from sailplane.infra.connections.schemas import InstanceTypeMetadata, InstanceTypeView

METADATA = InstanceTypeMetadata(
    provider="aws", system_pods_per_node=3, system_pods_per_system_node=2, system_pods_fixed=4,
    system_pods_per_node_margin=1, system_pods_fixed_margin=2, system_milli_cpu_per_node=100,
    system_milli_cpu_fixed=500, karpenter_milli_cpu_per_replica=1000, karpenter_replicas=2,
)
_GROUPS = {"m": "general", "t": "general", "a": "general", "c": "compute", "r": "memory", "x": "memory",
           "z": "memory", "u": "memory", "i": "storage", "d": "storage", "h": "storage", "p": "accelerated",
           "g": "accelerated", "f": "accelerated", "inf": "accelerated", "trn": "accelerated", "dl": "accelerated",
           "vt": "accelerated"}
ARCHITECTURES = ("x86_64", "arm64")


def reserved_milli_cpu(vcpus: int) -> int:
    cores = [(1, 60), (1, 10), (2, 5)]
    reserved, left = 0.0, vcpus
    for n, per_core in cores:
        used = min(left, n)
        reserved += used * per_core
        left -= used
    reserved += max(left, 0) * 2.5
    return int(round(reserved))


def max_pods(vcpus: int, enis: int, ipv4_per_eni: int) -> int:
    formula = enis * (ipv4_per_eni - 1) + 2
    return max(1, min(formula, 110 if vcpus < 30 else 250))


def _group(family: str) -> str:
    for prefix in sorted(_GROUPS, key=len, reverse=True):
        if family.startswith(prefix):
            return _GROUPS[prefix]
    return "other"


def view(raw: dict[str, Any]) -> InstanceTypeView | None:
    """The node view of a DescribeInstanceTypes entry; None for types Kubernetes nodes cannot be (32-bit only)."""
    archs = [a for a in (raw.get("ProcessorInfo") or {}).get("SupportedArchitectures", []) if a in ARCHITECTURES]
    if not archs:
        return None
    name = str(raw["InstanceType"])
    vcpus = int((raw.get("VCpuInfo") or {}).get("DefaultVCpus") or 0)
    memory = int((raw.get("MemoryInfo") or {}).get("SizeInMiB") or 0)
    network = raw.get("NetworkInfo") or {}
    enis = int(network.get("MaximumNetworkInterfaces") or 1)
    per_eni = int(network.get("Ipv4AddressesPerInterface") or 2)
    gpus = sum(int(g.get("Count") or 0) for g in (raw.get("GpuInfo") or {}).get("Gpus", []))
    family = name.split(".", 1)[0]
    return InstanceTypeView(provider="aws", instance_type=name, v_cpus=vcpus, memory_mi_b=memory,
                            architecture=archs[0], gpu_count=gpus, instance_family=family,
                            max_pods=max_pods(vcpus, enis, per_eni), group=_group(family),
                            allocatable_milli_cpu=max(vcpus * 1000 - reserved_milli_cpu(vcpus), 0))
