"""Write the SDK's operation snapshot (src/sailplane/client/operations.json) from the app's OpenAPI document.

    PYTHONPATH=src python scripts/client_spec.py          # rewrite the snapshot
    PYTHONPATH=src python scripts/client_spec.py --check  # exit 1 when the snapshot is stale

tests/client/test_spec.py fails when the snapshot and the live document differ, so the client cannot drift."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parent.parent / "src" / "sailplane" / "client" / "operations.json"
METHODS = ("get", "post", "put", "patch", "delete")


def _properties(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The top-level fields of a schema: its own, or every alternative's of a union."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    fields = set(schema.get("properties", {}))
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        fields |= _properties(document, alternative)
    return fields


def _body_fields(document: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if not schema:
        return []
    return sorted(_properties(document, schema))


def _response_fields(document: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    for status in ("200", "201", "202"):
        content = operation.get("responses", {}).get(status, {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema:
            return sorted(_properties(document, schema))
    return []


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation of the document by operationId: what a caller needs to build the request, and the
    top-level fields of its JSON request and response bodies (so a renamed field shows as a difference)."""
    out: dict[str, dict[str, Any]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if not operation or "operationId" not in operation:
                continue
            params = operation.get("parameters", [])
            out[operation["operationId"]] = {
                "method": method.upper(),
                "path": path,
                "pathParams": [p["name"] for p in params if p["in"] == "path"],
                "query": sorted(p["name"] for p in params if p["in"] == "query"),
                "headers": sorted(p["name"] for p in params if p["in"] == "header"),
                "body": _body_fields(document, operation),
                "response": _response_fields(document, operation),
            }
    return dict(sorted(out.items()))


def published() -> dict[str, Any]:
    """The OpenAPI document the app publishes (compute off, a throwaway SQLite database)."""
    from sailplane.app import create_app
    from sailplane.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/spec.db",  # type: ignore[call-arg]
                            secret_key="client-spec-snapshot-key", compute_enabled=False)
        app = create_app(settings, migrate=False)
        try:
            return app.openapi()
        finally:
            app.state.db.dispose()


def render(ops: dict[str, dict[str, Any]]) -> str:
    return json.dumps(ops, indent=1, sort_keys=True) + "\n"


def main() -> int:
    text = render(operations(published()))
    if "--check" in sys.argv:
        if SNAPSHOT.read_text() != text:
            print(f"{SNAPSHOT} is stale: run scripts/client_spec.py", file=sys.stderr)
            return 1
        return 0
    SNAPSHOT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
