"""getProvisionedClusterHealth: how an active cluster is now, from EKS and from its own Kubernetes API.

EKS (through the connection's role) says the cluster's status, its endpoint and CA, and its node groups; the
Kubernetes API (the endpoint EKS gives, TLS checked against the cluster's own CA, a bearer token made as
`aws eks get-token` makes it, `providers.aws.eks_token`) says whether the API server is ready (`/readyz`), its
version, which nodes are Ready and how the `kube-system` pods are. The verdict is recorded as the cluster's
`lastHealthStatus` / `lastHealthMessage` / `lastHealthCheckAt`. A cluster whose API does not answer is an answer
(unhealthy, with the reason), not an error; AWS refusing is 502. Organization admins only; another organization's
cluster is 404; a cluster that is not active is 409.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters import provisioned, states
from sailplane.infra.clusters.schemas import ClusterHealthView, NodeGroupHealth, ProviderHealth, SystemPodHealth
from sailplane.infra.connections import service as connections
from sailplane.infra.providers.aws import Aws, CloudError
from sailplane.kit.clock import utcnow
from sailplane.kit.errors import conflict

HEALTHY: Final = "healthy"
DEGRADED: Final = "degraded"
UNHEALTHY: Final = "unhealthy"
TIMEOUT_SECONDS: Final = 5.0
NODE_GROUP_LABEL: Final = "eks.amazonaws.com/nodegroup"
SYSTEM_NAMESPACE: Final = "kube-system"


@dataclass
class ApiState:
    """What the cluster's Kubernetes API answered; `error` when it could not be asked or refused."""

    ready: bool = False
    version: str | None = None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _tls(authority: str) -> ssl.SSLContext:
    """Trust the cluster's own CA only (EKS gives it base64-encoded PEM)."""
    return ssl.create_default_context(cadata=base64.b64decode(authority).decode())


def read_api(endpoint: str, authority: str, token: str) -> ApiState:
    state = ApiState()
    try:
        with httpx.Client(base_url=endpoint, verify=_tls(authority), timeout=TIMEOUT_SECONDS,
                          headers={"Authorization": f"Bearer {token}"}, follow_redirects=False) as client:
            ready = client.get("/readyz")
            state.ready = ready.status_code == 200
            if not state.ready:
                state.error = f"The API server is not ready (/readyz answered {ready.status_code})."
                return state
            state.version = str(_json(client, "/version").get("gitVersion") or "") or None
            state.nodes = list(_json(client, "/api/v1/nodes", limit=500).get("items") or [])
            state.pods = list(_json(client, f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/pods", limit=500)
                              .get("items") or [])
    except (httpx.HTTPError, ssl.SSLError, ValueError) as exc:
        state.ready = False
        state.error = f"The cluster's Kubernetes API at {endpoint} did not answer usably: {exc}"[:1000]
    return state


def _json(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    r = client.get(path, params=params)
    if r.status_code != 200:
        raise ValueError(f"{path} answered {r.status_code}")
    body = r.json()
    if not isinstance(body, dict):
        raise ValueError(f"{path} answered no object")
    return body


def _condition(resource: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (resource.get("status") or {}).get("conditions") or [])


def _pod(pod: dict[str, Any]) -> SystemPodHealth:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    waiting = [c["state"]["waiting"] for c in containers if (c.get("state") or {}).get("waiting")]
    message = (status.get("message") or (waiting[0].get("message") or waiting[0].get("reason") if waiting else None))
    return SystemPodHealth(name=str(meta.get("name") or ""), namespace=str(meta.get("namespace") or SYSTEM_NAMESPACE),
                           ready=_condition(pod, "Ready"), phase=status.get("phase"),
                           restart_count=sum(int(c.get("restartCount") or 0) for c in containers),
                           message=str(message) if message else None)


def judge(cluster: dict[str, Any] | None, groups: list[dict[str, Any]], api: ApiState) -> tuple[ClusterHealthView,
                                                                                                 str]:
    """The health view and the one-line message recorded with it."""
    ready_by_group: dict[str, int] = {}
    for node in api.nodes:
        if _condition(node, "Ready"):
            label = str(((node.get("metadata") or {}).get("labels") or {}).get(NODE_GROUP_LABEL) or "")
            ready_by_group[label] = ready_by_group.get(label, 0) + 1
    node_groups = []
    for group in groups:
        desired = int((group.get("scalingConfig") or {}).get("desiredSize") or 0)
        ready = ready_by_group.get(str(group.get("nodegroupName")), 0)
        issues = [str(i.get("message") or i.get("code")) for i in (group.get("health") or {}).get("issues") or []]
        if ready < desired and api.error is None:
            issues.append(f"{ready} of {desired} nodes are ready")
        node_groups.append(NodeGroupHealth(name=str(group.get("nodegroupName")), status=group.get("status"),
                                           desired_size=desired, ready_nodes=ready,
                                           message="; ".join(issues) or None))
    pods = sorted((_pod(p) for p in api.pods), key=lambda p: p.name)
    total, ready_nodes = len(api.nodes), sum(ready_by_group.values())
    eks_status = None if cluster is None else str(cluster.get("status") or "") or None
    if cluster is None:
        status, message = UNHEALTHY, "EKS has no such cluster in the account."
    elif eks_status != "ACTIVE":
        status, message = UNHEALTHY, f"EKS says the cluster is {eks_status}."
    elif api.error is not None:
        status, message = UNHEALTHY, api.error
    else:
        problems = ([f"node group {g.name} is {g.status}" for g in node_groups if g.status != "ACTIVE"]
                    + [f"node group {g.name}: {g.message}" for g in node_groups if g.message]
                    + ([f"{ready_nodes} of {total} nodes are ready"]
                       if ready_nodes < total and not any(g.message for g in node_groups) else [])
                    + [f"system pod {p.name} is not ready ({p.message or p.phase})" for p in pods
                       if not p.ready and p.phase != "Succeeded"])
        status = DEGRADED if problems else HEALTHY
        summary = (f"The API server ({api.version or 'version unknown'}) is ready; {ready_nodes} of {total} nodes "
                   f"and {sum(p.ready for p in pods)} of {len(pods)} system pods are ready.")
        detail = "; ".join(problems)
        message = f"{summary} {detail[:1].upper()}{detail[1:]}." if problems else summary
    view = ClusterHealthView(status=status, provider_metadata=ProviderHealth(status=eks_status),
                             node_groups=node_groups, system_pods=pods, total_nodes=total, ready_nodes=ready_nodes,
                             last_checked_at=utcnow())
    return view, message


def check(db: Session, principal: Principal, connection_id: str, cluster_id: str, settings: Settings,
          aws: Aws) -> ClusterHealthView:
    row = provisioned.get_in(db, principal, connection_id, cluster_id)
    if row.status not in states.IN_SERVICE or not row.cluster_name:
        raise conflict("cluster_not_active", f"The cluster is {row.status}; its health is checked once it is "
                                             "provisioned (provisionCluster).")
    name, region = row.cluster_name, row.region
    _, role = connections.request_role(db, connections.get(db, principal, connection_id), settings, aws)
    try:
        cluster = aws.eks_cluster(role, region, name)
        groups = aws.node_groups(role, region, name) if cluster is not None else []
        token = aws.eks_token(role, region, name)
    except CloudError as exc:
        raise connections.upstream(exc) from None
    endpoint = str((cluster or {}).get("endpoint") or "")
    authority = str(((cluster or {}).get("certificateAuthority") or {}).get("data") or "")
    if cluster is None or str(cluster.get("status")) != "ACTIVE":
        api = ApiState()
    elif not endpoint or not authority:
        api = ApiState(error="EKS gives no endpoint or CA for the cluster.")
    else:
        api = read_api(endpoint, authority, token)
    view, message = judge(cluster, groups, api)
    row = provisioned.get_in(db, principal, connection_id, cluster_id)  # again: released while AWS answered
    row.last_health_status, row.last_health_message = view.status, message[:2000]
    row.last_health_check_at = view.last_checked_at
    db.flush()
    return view
