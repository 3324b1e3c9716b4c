"""The metric objects of one server (one registry per app, so several apps in one process never mix counts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.registry import Collector

# Seconds from a scheduled run's slot to its creation: the scheduler ticks every second, so most land under 2 s.
LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# Seconds: API calls are milliseconds; admission waits and slow writes reach seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counts and latency per operation and status, plus collectors added by the app's wiring."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)  # never collect (read the DB) on register
        self.requests = Counter(
            "sailplane_http_requests", "HTTP requests answered, by operation (the OpenAPI operationId) and status.",
            ("operation", "method", "status"), registry=self.registry)
        self.latency = Histogram(
            "sailplane_http_request_duration_seconds", "Time from request to the end of the response, by operation.",
            ("operation", "method"), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.scheduler_lag = Histogram(
            "sailplane_scheduler_lag_seconds", "From a scheduled run's slot (its cron time) to the run being created.",
            buckets=LAG_BUCKETS, registry=self.registry)
        self.lease_missed = Counter(
            "sailplane_run_lease_renewals_missed",
            "Job run leases this server renewed too late (reason=late: after they had lapsed) or found taken over "
            "by another node (reason=taken_over): a stalled server, whose runs may be retried elsewhere.",
            ("reason",), registry=self.registry)
        self.operation_lease_missed = Counter(
            "sailplane_operation_lease_renewals_missed",
            "Infrastructure operation leases this server renewed too late (reason=late: after they had lapsed) or "
            "found taken over by another server (reason=taken_over): a stalled or overloaded server.",
            ("reason",), registry=self.registry)
        # The request series by (operation, method, status): few (operations are route names, never paths).
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        for counter in (self.lease_missed, self.operation_lease_missed):
            for reason in ("late", "taken_over"):
                counter.labels(reason)  # at 0 from the start: an alert's rate() needs the series

    def observe_request(self, operation: str, method: str, status: int, seconds: float) -> None:
        key = (operation, method, status)
        series = self._request_series.get(key)
        if series is None:  # `labels()` locks and builds its key each call: looked up once per label set
            series = self._request_series[key] = (self.requests.labels(operation, method, str(status)),
                                                  self.latency.labels(operation, method))
        series[0].inc()
        series[1].observe(seconds)

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)
