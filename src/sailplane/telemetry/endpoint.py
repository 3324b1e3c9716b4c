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
from sailplane.telemetry.metrics import Metrics


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install_metrics_endpoint(app: FastAPI, metrics: Metrics, token: str | None) -> None:
    @app.get("/metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:
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
