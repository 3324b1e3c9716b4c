"""`/metrics` in Prometheus' text format. Without SAILPLANE_METRICS_TOKEN only loopback clients get it (a
Prometheus or agent on the host, nothing from outside: counts of an organization's sessions are not public);
with it, anyone presenting `Authorization: Bearer <token>` does (a scraper elsewhere), and loopback needs it too."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sailplane.kit.errors import error_body
from sailplane.kit.openapi import ERROR_REF
from sailplane.telemetry.metrics import Metrics


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install_metrics_endpoint(app: FastAPI, metrics: Metrics, token: str | None) -> None:
    @app.get("/metrics", operation_id="metrics", tags=["service"], response_class=Response, responses={
        200: {"description": "The metrics in Prometheus' text exposition format.",
              "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
        401: {"description": "SAILPLANE_METRICS_TOKEN is set and the bearer token is missing or wrong.",
              "content": {"application/json": {"schema": ERROR_REF}}},
        403: {"description": "No metrics token is configured and the client is not on loopback.",
              "content": {"application/json": {"schema": ERROR_REF}}}})
    def scrape(request: Request) -> Response:
        """Prometheus metrics of this node and of the deployment's workloads (read from the database at scrape
        time). Loopback only, or with `Authorization: Bearer <SAILPLANE_METRICS_TOKEN>` when one is set."""
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                body = error_body(401, "unauthenticated", "The metrics token is missing or wrong.", request)
                return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        elif not _is_loopback(request.client.host if request.client else None):
            body = error_body(403, "forbidden", "Metrics are served to loopback clients only unless "
                              "SAILPLANE_METRICS_TOKEN is set.", request)
            return JSONResponse(body, status_code=403)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
