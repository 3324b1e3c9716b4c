"""getProvisionedClusterMetrics: a provisioned cluster's CPU and memory use over the last hour, day or week, from
CloudWatch Container Insights in the customer's account (GetMetricData through the connection's role).

Container Insights (the EKS add-on `amazon-cloudwatch-observability`) publishes `node_cpu_utilization` and
`node_memory_utilization` in the `ContainerInsights` namespace by `ClusterName`; each point is the average over one
step of the period (1h: 5 minutes, 24h: 1 hour, 7d: 6 hours). A cluster without the add-on has no points: empty
series, not an error. `estimatedCost` and `activeJobCount` are empty: there is no price source yet, and no job runs
on a provisioned cluster until the Kubernetes compute backend exists. A destroyed cluster keeps its history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final, Literal

from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters import provisioned
from sailplane.infra.clusters.schemas import ClusterMetricsView, MetricPoint
from sailplane.infra.connections import service as connections
from sailplane.infra.providers.aws import Aws, CloudError
from sailplane.kit.clock import utcnow
from sailplane.kit.errors import conflict

Period = Literal["1h", "24h", "7d"]
# period → (how far back, seconds per point)
PERIODS: Final[dict[str, tuple[timedelta, int]]] = {
    "1h": (timedelta(hours=1), 300), "24h": (timedelta(hours=24), 3600), "7d": (timedelta(days=7), 21600)}
NAMESPACE: Final = "ContainerInsights"
SERIES: Final = {"cpu": "node_cpu_utilization", "memory": "node_memory_utilization"}


def _query(key: str, metric: str, cluster_name: str, step: int) -> dict[str, Any]:
    return {"Id": key, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                   "Dimensions": [{"Name": "ClusterName", "Value": cluster_name}]},
        "Period": step, "Stat": "Average"}}


def read(db: Session, principal: Principal, connection_id: str, cluster_id: str, period: Period, settings: Settings,
         aws: Aws) -> ClusterMetricsView:
    row = provisioned.get_in(db, principal, connection_id, cluster_id)
    if not row.cluster_name:
        raise conflict("cluster_not_provisioned", f"The cluster is {row.status} and was never provisioned "
                                                  "(provisionCluster): it has no metrics.")
    name, region = row.cluster_name, row.region
    span, step = PERIODS[period]
    end = utcnow()
    _, role = connections.request_role(db, connections.get(db, principal, connection_id), settings, aws)
    try:
        found = aws.metric_data(role, region, [_query(k, m, name, step) for k, m in SERIES.items()], end - span, end)
    except CloudError as exc:
        raise connections.upstream(exc) from None

    def points(key: str) -> list[MetricPoint]:
        return [MetricPoint(timestamp=at, value=round(value, 4)) for at, value in found.get(key, [])]

    return ClusterMetricsView(cpu_utilization=points("cpu"), memory_utilization=points("memory"), estimated_cost=[],
                              active_job_count=[])
