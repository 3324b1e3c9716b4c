"""Per-request metrics and the structured request log line, as one pure ASGI middleware (no per-request task)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sailplane.telemetry.metrics import Metrics

request_log = logging.getLogger("sailplane.request")


def operation_of(scope: Scope) -> str:
    """The route's operationId; a fixed name for routes without one, so label values stay few (never the path)."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    operation_id = getattr(route, "operation_id", None)
    if operation_id:
        return str(operation_id)
    path = str(getattr(route, "path", ""))
    if path.startswith("/notebooks/"):
        return "notebookProxy"
    return str(getattr(route, "name", None) or "unnamed")


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, count: bool = True, log_requests: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.count = count
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            operation = operation_of(scope)
            if self.count:
                self.metrics.observe_request(operation, scope["method"], status, seconds)
            if self.log_requests:
                request_log.info("%s %s %s", scope["method"], scope["path"], status, extra={
                    "operation": operation, "method": scope["method"], "path": scope["path"], "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0]})
