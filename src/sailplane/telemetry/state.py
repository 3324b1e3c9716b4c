"""Gauges read from the database when Prometheus scrapes: what every node of the deployment sees, so any node
answers for all (states live in the shared database, not in one process)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from sailplane.gateway.traffic import Traffic
from sailplane.infra.operations.models import Operation
from sailplane.kit.clock import as_utc
from sailplane.kit.db import Database
from sailplane.notifications import sender as deliveries
from sailplane.notifications.models import NotificationDelivery
from sailplane.workloads import instance_states, session_states
from sailplane.workloads.models import ComputeInstance, InteractiveSession
from sailplane.workloads.notebooks import states as notebook_states
from sailplane.workloads.notebooks.models import Notebook
from sailplane.workloads.runs import states as run_states
from sailplane.workloads.runs.models import JobRun

log = logging.getLogger(__name__)


def _by_status(db: Session, column: object, statuses: Sequence[str] | None) -> dict[str, int]:
    query = select(column, func.count()).group_by(column)  # type: ignore[call-overload]
    if statuses is not None:
        query = query.where(column.in_(statuses))  # type: ignore[attr-defined]
    counts = {status: 0 for status in statuses or ()}
    counts.update({str(status): int(n) for status, n in db.execute(query)})
    return counts


def _gauge(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, n in sorted(counts.items()):
        gauge.add_metric([status], n)
    return gauge


class WorkloadStateCollector(Collector):
    """Sessions, runs, notebooks, Sail instances and operations by status. Finished runs and closed sessions
    are not counted (their tables grow without bound; the live ones are what an alert is about)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterable[Metric]:
        try:
            with self.db.session() as db:
                yield from self._read(db)
        except Exception:  # noqa: BLE001 - a scrape during a database outage still gets the request metrics
            log.warning("metrics: the database could not be read", exc_info=True)

    def _read(self, db: Session) -> Iterator[Metric]:
        yield _gauge("sailplane_sessions", "Open interactive sessions by status.",
                     _by_status(db, InteractiveSession.status, session_states.OPEN_STATES))
        yield _gauge("sailplane_job_runs", "Job runs not yet finished, by status (pending and ready: the queue).",
                     _by_status(db, JobRun.status, run_states.ACTIVE_STATES))
        yield _gauge("sailplane_notebooks", "Notebooks by status.",
                     _by_status(db, Notebook.status, notebook_states.NOTEBOOK_STATES))
        yield _gauge("sailplane_operations", "Infrastructure operations by status.",
                     _by_status(db, Operation.status, None))
        yield _gauge("sailplane_notification_deliveries", "Notification deliveries not yet sent (pending includes "
                     "those waiting for a retry), by status.",
                     _by_status(db, NotificationDelivery.status, (deliveries.PENDING, deliveries.DELIVERING)))
        yield _gauge("sailplane_sail_instances", "Sail servers held by the control plane, by status.",
                     _by_status(db, ComputeInstance.status, instance_states.HELD_STATES))
        started = GaugeMetricFamily("sailplane_sail_instance_start_time_seconds",
                                    "When each running Sail server started (Unix time).", labels=["instance", "node"])
        rows = db.execute(select(ComputeInstance.id, ComputeInstance.node, ComputeInstance.started_at)
                          .where(ComputeInstance.status == instance_states.RUNNING,
                                 ComputeInstance.started_at.is_not(None)))
        for instance_id, node, started_at in rows:
            if started_at is not None:
                started.add_metric([instance_id, node], as_utc(started_at).timestamp())
        yield started


class PoolCollector(Collector):
    """Connections of the server's two pools (requests, background loops): in use against the pool's size."""

    def __init__(self, pools: dict[str, Database]) -> None:
        self.pools = pools

    def collect(self) -> Iterable[Metric]:
        in_use = GaugeMetricFamily("sailplane_db_pool_connections_in_use", "Database connections checked out.",
                                   labels=["pool"])
        size = GaugeMetricFamily("sailplane_db_pool_size", "Connections the pool keeps (overflow comes on top).",
                                 labels=["pool"])
        for name, database in self.pools.items():
            pool = database.engine.pool
            if isinstance(pool, QueuePool):
                in_use.add_metric([name], pool.checkedout())
                size.add_metric([name], pool.size())
        yield in_use
        yield size


class GatewayCollector(Collector):
    """The Spark Connect gateway's relayed calls and bytes (this node's; `traffic()` is None while compute is off)."""

    def __init__(self, traffic: Callable[[], Traffic | None]) -> None:
        self.traffic = traffic

    def collect(self) -> Iterable[Metric]:
        traffic = self.traffic()
        if traffic is None:
            return
        calls = CounterMetricFamily("sailplane_gateway_calls", "Spark Connect calls relayed to Sail, by method.",
                                    labels=["method"])
        for method, n in sorted(dict(traffic.calls).items()):
            calls.add_metric([method], n)
        refused = CounterMetricFamily("sailplane_gateway_refused_calls",
                                      "Calls the gateway answered itself (bad or expired token, no access), by gRPC "
                                      "status.", labels=["code"])
        for code, n in sorted(dict(traffic.refused).items()):
            refused.add_metric([code], n)
        moved = CounterMetricFamily("sailplane_gateway_bytes", "Bytes relayed, by direction.", labels=["direction"])
        moved.add_metric(["from_clients"], traffic.bytes_from_clients)
        moved.add_metric(["from_sail"], traffic.bytes_from_sail)
        yield from (calls, refused, moved)
