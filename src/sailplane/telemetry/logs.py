"""JSON-lines logs (`sailplane serve --log-format json`): one object per line, each carrying the request ID of
the request it was written for (the same ID as the error shape's `requestId` and the X-Request-Id header)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from sailplane.kit.requests import current_request_id

# What a request log line (telemetry.http) adds to its record; copied to the JSON object when present.
REQUEST_FIELDS = ("operation", "method", "path", "status", "duration_ms", "client")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id is not None:
            entry["requestId"] = request_id
        for name in REQUEST_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, log_format: str) -> None:
    """The process's logging: text lines as before, or JSON lines on stderr."""
    if log_format != "json":
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # through the root's JSON handler
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
