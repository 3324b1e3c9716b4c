"""getProvisionedClusterHealth and getProvisionedClusterMetrics of a provisioned cluster on the moto server.

Health: EKS (moto) says the cluster's status, endpoint, CA and node groups; the Kubernetes API behind the endpoint is
the tests' stand-in API server (`tests.infra.kube_standin`: a real HTTPS server on loopback with its own CA, which
the tests' moto server gives every EKS cluster as its endpoint, since moto's clusters have no API server). Sailplane
reaches it with TLS checked against the CA EKS gives and a bearer token made as `aws eks get-token` makes it. What
the stand-in cannot show: a real authenticator's call to STS with the token (moto's server does not answer a
presigned GET), and nodes that really join: the test sets which nodes and system pods there are.

Metrics: CloudWatch on the moto server (GetMetricData through the connection's role); the points are put there the
way Container Insights' agent would put them, as the customer's account.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.infra.conftest import REGION
from tests.infra.helpers import wait_operation
from tests.infra.kube_standin import KubeStandIn, node, pod
from tests.infra.test_cluster_records import pending_cluster
from tests.support.actors import assert_error, signup

SYSTEM_PODS = ("aws-node-a1", "coredns-7d-x1", "coredns-7d-x2", "kube-proxy-b2")


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def test_health_and_metrics_of_a_provisioned_cluster(infra_api: str, customer_aws: Any,
                                                     kube_api: KubeStandIn) -> None:
    owner, _conn_id, _network, base, cid = pending_cluster(infra_api, customer_aws, "10.81.0.0/16", "observed")
    name = f"sailplane-{cid.lower()}"
    assert_error(owner.get(f"{base}/{cid}/health"), 409, "cluster_not_active")
    assert_error(owner.get(f"{base}/{cid}/metrics"), 409, "cluster_not_provisioned")
    op = owner.post(f"{base}/{cid}/provision")
    assert op.status_code == 202, op.text
    assert wait_operation(owner, op.json()["id"])["status"] == "succeeded"
    assert customer_aws("eks").describe_cluster(name=name)["cluster"]["endpoint"] == kube_api.endpoint

    # Healthy: the API server is ready, both nodes of the system node group are Ready, so are the system pods.
    kube_api.ready = True
    kube_api.nodes = [node("ip-10-81-0-10", "system"), node("ip-10-81-0-11", "system")]
    kube_api.pods = [pod(p) for p in SYSTEM_PODS]
    seen = len(kube_api.tokens)
    before = datetime.now(UTC)
    r = owner.get(f"{base}/{cid}/health")
    assert r.status_code == 200, r.text
    health = r.json()
    assert health["status"] == "healthy", health
    assert health["providerMetadata"] == {"status": "ACTIVE"}
    assert health["nodeGroups"] == [{"name": "system", "status": "ACTIVE", "desiredSize": 2, "readyNodes": 2,
                                     "message": None}]
    assert (health["totalNodes"], health["readyNodes"]) == (2, 2)
    assert [(p["name"], p["namespace"], p["ready"], p["phase"], p["restartCount"]) for p in health["systemPods"]] \
        == [(p, "kube-system", True, "Running", 0) for p in SYSTEM_PODS]
    assert before - timedelta(seconds=1) <= _parse(health["lastCheckedAt"]) <= datetime.now(UTC)
    # It reached the API with an EKS token, and nothing refused it (the stand-in answers 401 to a token it refuses).
    assert len(kube_api.tokens) > seen and all(t.startswith("k8s-aws-v1.") for t in kube_api.tokens[seen:])
    item = owner.get(f"{base}/{cid}").json()["included"]["clusters"][0]
    assert item["lastHealthStatus"] == "healthy"
    assert "v1.35.0-eks-standin" in item["lastHealthMessage"] and "2 of 2 nodes" in item["lastHealthMessage"]
    assert item["lastHealthCheckAt"] == health["lastCheckedAt"]

    # Degraded: a node is not Ready, a system pod crash-loops.
    kube_api.nodes = [node("ip-10-81-0-10", "system"), node("ip-10-81-0-11", "system", ready=False)]
    kube_api.pods = [pod(p) for p in SYSTEM_PODS[:-1]] + [pod(SYSTEM_PODS[-1], ready=False, restarts=7,
                                                             waiting="CrashLoopBackOff")]
    health = owner.get(f"{base}/{cid}/health").json()
    assert health["status"] == "degraded", health
    assert (health["totalNodes"], health["readyNodes"]) == (2, 1)
    assert health["nodeGroups"][0]["readyNodes"] == 1
    assert health["nodeGroups"][0]["message"] == "1 of 2 nodes are ready"
    proxy = health["systemPods"][-1]
    assert (proxy["ready"], proxy["restartCount"], proxy["message"]) == (False, 7, "CrashLoopBackOff")
    message = owner.get(f"/infra/clusters/{cid}").json()["included"]["clusters"][0]["lastHealthMessage"]
    assert "1 of 2 nodes are ready" in message and "kube-proxy-b2 is not ready (CrashLoopBackOff)" in message

    # Unhealthy: the API server is not ready. An answer, not an error.
    kube_api.ready = False
    r = owner.get(f"{base}/{cid}/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "unhealthy" and r.json()["systemPods"] == []
    item = owner.get(f"/infra/clusters/{cid}").json()["included"]["clusters"][0]
    assert item["lastHealthStatus"] == "unhealthy" and "/readyz answered 500" in item["lastHealthMessage"]
    kube_api.ready = True

    # Metrics: what Container Insights put in the customer's CloudWatch, averaged per step of the period.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cloudwatch = customer_aws("cloudwatch", REGION)
    for metric, values in (("node_cpu_utilization", (20.0, 40.0, 60.0)), ("node_memory_utilization", (50.0,))):
        cloudwatch.put_metric_data(Namespace="ContainerInsights", MetricData=[
            {"MetricName": metric, "Dimensions": [{"Name": "ClusterName", "Value": name}],
             "Timestamp": now - timedelta(minutes=12 * i + 3), "Value": v, "Unit": "Percent"}
            for i, v in enumerate(values)])
    cloudwatch.put_metric_data(Namespace="ContainerInsights", MetricData=[  # another cluster's: not in the answer
        {"MetricName": "node_cpu_utilization", "Dimensions": [{"Name": "ClusterName", "Value": "someone-else"}],
         "Timestamp": now - timedelta(minutes=3), "Value": 99.0}])
    r = owner.get(f"{base}/{cid}/metrics")  # default period: 1h
    assert r.status_code == 200, r.text
    metrics = r.json()
    assert sorted(p["value"] for p in metrics["cpuUtilization"]) == [20.0, 40.0, 60.0], metrics
    assert [p["value"] for p in metrics["memoryUtilization"]] == [50.0]
    stamps = [_parse(p["timestamp"]) for p in metrics["cpuUtilization"]]
    assert stamps == sorted(stamps) and all(now - timedelta(hours=1) <= s <= now for s in stamps)
    assert metrics["estimatedCost"] == [] and metrics["activeJobCount"] == []
    week = owner.get(f"{base}/{cid}/metrics", params={"period": "7d"}).json()
    assert sum(p["value"] for p in week["cpuUtilization"]) / len(week["cpuUtilization"]) > 0
    assert len(week["cpuUtilization"]) <= 2  # three points of the last hour fall in one or two 6-hour steps
    err = assert_error(owner.get(f"{base}/{cid}/metrics", params={"period": "2h"}), 400, "validation_failed")
    assert "period" in err["details"]["fieldErrors"], err

    # Another organization's admin: the cluster does not exist for them.
    outsider = signup(infra_api)
    for suffix in ("health", "metrics"):
        assert_error(outsider.get(f"{base}/{cid}/{suffix}"), 404)

    op = owner.delete(f"{base}/{cid}")
    assert wait_operation(owner, op.json()["id"])["status"] == "succeeded"
    assert_error(owner.get(f"{base}/{cid}/health"), 409, "cluster_not_active")
    # A destroyed cluster keeps its history.
    assert len(owner.get(f"{base}/{cid}/metrics").json()["cpuUtilization"]) == 3
