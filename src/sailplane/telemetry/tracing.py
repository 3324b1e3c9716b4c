"""OpenTelemetry traces: a span per API request, per database statement and per Spark Connect call relayed by the
gateway, sent over OTLP/HTTP to the configured collector (`Settings.otlp_traces_endpoint`).

Off unless an endpoint is configured, and then nothing of the SDK is even imported: an unconfigured server pays
nothing. Each app has its own tracer provider (never the global one), so several apps in one process — the
tests — never send each other's spans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sailplane.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from sqlalchemy.engine import Engine

# Scraped or polled every few seconds: spans of these would drown the ones people look for.
UNTRACED_PATHS = "/metrics,/healthz,/readyz"


class Tracing:
    """One app's tracer provider: spans are batched and exported in the background; `shutdown` sends the rest."""

    def __init__(self, settings: Settings) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        assert settings.otlp_traces_endpoint is not None
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": settings.otel_service_name}))
        # Headers and timeouts come from OpenTelemetry's own variables (OTEL_EXPORTER_OTLP_HEADERS, ...).
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint)))

    def tracer(self, name: str) -> Tracer:
        return self.provider.get_tracer(name)

    def instrument_app(self, app: FastAPI) -> None:
        """Server spans for requests, named by route; the caller's `traceparent` is their parent."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.provider, excluded_urls=UNTRACED_PATHS,
                                           exclude_spans=["receive", "send"])

    def instrument_engine(self, engine: Engine) -> None:
        """Client spans for this engine's statements, children of the request (or loop) span they run in.

        Per engine, not SQLAlchemyInstrumentor().instrument(): that patches create_engine for the whole process
        and, being a singleton, instruments only the first app's engines."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        # The instrumentation also counts pool connections as OpenTelemetry metrics; /metrics has the pool already.
        usage: Any = NoOpMeterProvider().get_meter(__name__).create_up_down_counter("db.client.connections.usage")
        EngineTracer(self.tracer("sailplane.db"), engine, usage)

    def shutdown(self) -> None:
        self.provider.shutdown()


def start_tracing(settings: Settings) -> Tracing | None:
    return Tracing(settings) if settings.otlp_traces_endpoint else None
