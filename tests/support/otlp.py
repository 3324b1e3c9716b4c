"""The stand-in for an OpenTelemetry collector. No collector can run here (otelcol is neither on PyPI nor in
Debian), so a real loopback HTTP server (support.receiver) takes the OTLP/HTTP exports, and the protobuf classes
OpenTelemetry publishes (opentelemetry-proto) decode them, as a collector's OTLP receiver does."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.receiver import Answer, Receiver

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    service: str


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OtlpCollector:
    def __init__(self) -> None:
        self.receiver = Receiver(default=Answer(body=b"", headers={"Content-Type": "application/x-protobuf"}))

    def start(self) -> OtlpCollector:
        self.receiver.start()
        return self

    def stop(self) -> None:
        self.receiver.stop()

    @property
    def traces_url(self) -> str:
        return f"{self.receiver.url}/v1/traces"

    def raw(self) -> bytes:
        """Every export as received, decompressed: what a secret must never be found in."""
        return b"".join(self._body(r.body, r.headers) for r in self.receiver.at("/v1/traces"))

    def spans(self) -> list[ReceivedSpan]:
        found = []
        for request in self.receiver.at("/v1/traces"):
            assert request.headers.get("content-type") == "application/x-protobuf", request.headers
            export = ExportTraceServiceRequest.FromString(self._body(request.body, request.headers))
            for resource_spans in export.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(ReceivedSpan(
                            span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.kind,
                            {a.key: _value(a.value) for a in span.attributes}, str(resource.get("service.name"))))
        return found

    @staticmethod
    def _body(body: bytes, headers: dict[str, str]) -> bytes:
        return gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
