"""A provisioned cluster's kubeconfig: its endpoint and CA (the stack's outputs), and a user that is an `exec`
entry running `aws eks get-token` — a short-lived token made on the reader's machine with their own AWS identity,
which the cluster lets in only with an EKS access entry: the cluster's stack makes one for the connection's role
(cluster admin) and one for the job runner's role (its namespace), none for anyone else (`clusters.template`). Never a
static secret: nothing in it can be replayed to reach the cluster.
"""

from __future__ import annotations

import json

from sailplane.infra.clusters import states
from sailplane.infra.clusters.models import ProvisionedCluster
from sailplane.infra.clusters.schemas import KubeconfigView
from sailplane.kit.errors import conflict

EXEC_API = "client.authentication.k8s.io/v1beta1"


def kubeconfig(row: ProvisionedCluster) -> KubeconfigView:
    outputs = row.iac_outputs or {}
    endpoint, authority = outputs.get("ClusterEndpoint"), outputs.get("ClusterCertificateAuthority")
    if row.status not in states.IN_SERVICE or not endpoint or not authority or not row.cluster_name:
        raise conflict("cluster_not_active", f"The cluster is {row.status}; a kubeconfig exists once it is "
                                             "provisioned (provisionCluster).")
    name = row.cluster_arn or row.cluster_name
    document = {
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": str(endpoint),
                                                "certificate-authority-data": str(authority)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": EXEC_API, "command": "aws",
            "args": ["--region", row.region, "eks", "get-token", "--cluster-name", row.cluster_name,
                     "--output", "json"],
            "interactiveMode": "IfAvailable", "provideClusterInfo": False}}}],
    }
    return KubeconfigView(kubeconfig=json.dumps(document, indent=2), cluster_endpoint=str(endpoint),
                          cluster_certificate_authority=str(authority))
