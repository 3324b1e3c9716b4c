"""The published OpenAPI document: FastAPI's, completed with what it cannot know.

- every status an operation can answer besides its success, each with the one error shape
  (`ErrorResponse`), derived from the route: 400/422 (input), 401/403/404 (authenticated operations:
  credentials, permissions, the organization named by `LakeSail-Organization-Id`), 409 (writes), 413
  (bodies), 429 (throttled sign-in steps), 502 (an identity provider), 503 (database busy, compute or DNS
  unavailable), 507 (writes, when the disk is full);
- the bearer security scheme, on the operations that take (or accept) a token;
- parameters as they travel: a query, path or header value is a string or absent, never null; the
  organization header with its ID pattern;
- optional request fields that refuse null published without null (kit.schemas.RequestModel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from sailplane.kit.ids import ID_PATTERN

ORG_HEADER = "LakeSail-Organization-Id"
SECURITY_SCHEME = "bearerAuth"
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}

# Sign-in steps that lock out after repeated failures (auth.throttle): 429 with Retry-After.
THROTTLED = {"login", "verifyLoginCode", "completeMfaLogin", "confirmTotpEnrollment", "removeTotp",
             "regenerateRecoveryCodes"}
# Operations that reach an identity provider or a cloud account: 502 when it cannot be reached or answers
# unusably (or refuses the connection's role).
UPSTREAM = {"autoSetupIdentityProvider", "startSsoLogin", "finishSsoLogin", "createConnection",
            "getConnectionTemplate", "downloadConnectionTemplate", "listRegions", "listInstanceTypes",
            "listProviderNetworks", "getProvisionedClusterHealth", "getProvisionedClusterMetrics",
            "createNetwork", "createProvisionedCluster", "updateProvisionedCluster"}  # adoption, instance types
# Public operations' own refusals (authenticated operations get 401/403/404 from the route).
PUBLIC_STATUSES: dict[str, set[int]] = {
    "signup": {409},
    "login": {401, 403},
    "completeMfaLogin": {401, 403},
    "requestLoginCode": set(),
    "verifyLoginCode": {401, 403},
    "requestPasswordReset": set(),
    "resetPassword": {401},
    "verifyEmail": {401, 409},
    "describeInvitation": {404},
    "acceptInvitation": {403, 404, 409},
    "startSsoLogin": {404},
    "finishSsoLogin": {401, 403, 404},
    "exchangeSsoCode": {401, 403},
}

DESCRIPTIONS = {
    400: "Bad request: malformed JSON, or an invalid query, path or header parameter.",
    401: "No valid credentials: the bearer token is missing, invalid, expired or revoked.",
    403: "Not allowed: a permission is missing, or the login must first enroll MFA or change its password.",
    404: "Not found, or not visible to the caller (also: the organization named by LakeSail-Organization-Id).",
    409: "Conflict with the current state of a resource.",
    413: "The request body is larger than the server accepts (SAILPLANE_MAX_REQUEST_BYTES).",
    422: "Validation failed; `details.fieldErrors` names each field (also: a NUL character anywhere in the "
         "request).",
    429: "Too many failed attempts: retry after `Retry-After` seconds.",
    502: "The identity provider or cloud provider could not be reached, or its answer was not usable (for a "
         "connection: its role could not be assumed; `details.causedBy` is the provider's error code).",
    507: "The server's disk is full: the change was not made (reads keep working); an administrator must free "
         "space.",
    503: "Temporarily unavailable (the database is busy, compute or DNS is unavailable); retry after "
         "`Retry-After` seconds when given.",
}

ERROR_TYPES = ["invalid_request", "authentication", "authorization", "not_found", "conflict", "validation",
               "rate_limit", "unavailable", "internal"]

ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorDetails": {
        "type": "object",
        "properties": {
            "retryable": {"type": "boolean", "description": "Whether the same request may succeed later."},
            "retryAfter": {"type": ["integer", "null"], "description": "Seconds to wait before retrying."},
            "fieldErrors": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "Problem per field, by its path in the request (`config.sql`)."},
            "requestId": {"type": ["string", "null"], "description": "Also in the X-Request-Id header."},
            "causedBy": {"type": ["string", "null"]},
        },
        "required": ["retryable", "retryAfter", "fieldErrors", "requestId", "causedBy"],
    },
    "ErrorBody": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "Stable, machine-readable reason, e.g. validation_failed."},
            "message": {"type": "string"},
            "errorType": {"type": "string", "enum": ERROR_TYPES},
            "details": {"$ref": "#/components/schemas/ErrorDetails"},
        },
        "required": ["code", "message", "errorType", "details"],
    },
    "ErrorResponse": {
        "type": "object",
        "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}},
        "required": ["error"],
        "additionalProperties": False,
        "description": "Every failure, in one shape.",
    },
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_CHALLENGE = {"WWW-Authenticate": {"description": 'Bearer realm="sailplane" (RFC 6750), with error="invalid_token" '
                                                  "when a token was sent.",
                                   "required": True, "schema": {"type": "string"}}}


def _calls(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _auth(route: APIRoute, optional_identity: Callable[..., Any]) -> str:
    """'required', 'optional' or 'none': whether the route reads the bearer token, and must have one.
    `optional_identity` is the dependency that reads a token when there is one (auth.deps passes it
    through install_openapi, so this infrastructure module imports no domain package)."""
    names = set()
    reads_token = False
    for dep in _calls(route.dependant):
        names.add(dep.call)
        reads_token |= any(p.alias == "Authorization" for p in dep.header_params)
    if not reads_token:
        return "none"
    if optional_identity in names and not any(
            getattr(c, "__name__", "") in ("current_identity", "principal_even_if_password_expired") for c in names):
        return "optional"
    return "required"


def statuses(route: APIRoute, has_body: bool, auth: str) -> set[int]:
    """The error statuses an operation can answer (see the module docstring); `auth` is `_auth`'s answer."""
    op = route.operation_id or ""
    found = {400, 422, 503}
    if auth != "none":
        found |= {401, 403, 404}
    else:
        found |= PUBLIC_STATUSES.get(op, set())
    if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
        found |= {409, 507}
    if has_body:
        found.add(413)
    if op in THROTTLED:
        found.add(429)
    if op in UPSTREAM:
        found.add(502)
    return found


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's value is a string or absent: `anyOf [X, null]` becomes X."""
    options = schema.get("anyOf")
    if options:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            merged = {k: v for k, v in schema.items() if k != "anyOf"}
            merged.update(kept[0])
            return merged
        schema = {**schema, "anyOf": kept}
    return schema


def complete(doc: dict[str, Any], app: FastAPI, optional_identity: Callable[..., Any]) -> dict[str, Any]:
    routes: dict[str, APIRoute] = {}
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute) and original.operation_id:
            routes[original.operation_id] = original
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(ERROR_SCHEMAS)
    components["securitySchemes"] = {SECURITY_SCHEME: {
        "type": "http", "scheme": "bearer",
        "description": "A login token (signup, login, SSO) or a service account API key.",
    }}
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            route = routes.get(operation.get("operationId", ""))
            if route is None:
                continue
            for param in operation.get("parameters", []):
                param["schema"] = _strip_null(param.get("schema", {}))
                if "const" in param["schema"]:  # a one-value enum (sortBy of a list with one sort field)
                    param["schema"]["enum"] = [param["schema"].pop("const")]
                if param.get("name") == ORG_HEADER:
                    param["schema"] = {"type": "string", "pattern": ID_PATTERN}
                    param["description"] = ("The organization this request acts on; without it, the caller's only "
                                            "(or default) organization.")
            if not path.startswith("/api/"):  # service endpoints: only readiness has a failure to report
                if operation.get("operationId") == "ready":
                    operation.setdefault("responses", {})["503"] = {
                        "description": "Not ready: the database is unreachable or its migrations are not applied.",
                        "content": {"application/json": {"schema": ERROR_REF}}}
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            auth = _auth(route, optional_identity)
            if auth == "required":
                operation["security"] = [{SECURITY_SCHEME: []}]
            elif auth == "optional":
                operation["security"] = [{SECURITY_SCHEME: []}, {}]
            else:
                operation["security"] = []
            for status in sorted(statuses(route, "requestBody" in operation, auth)):
                entry: dict[str, Any] = {"description": DESCRIPTIONS[status],
                                         "content": {"application/json": {"schema": ERROR_REF}}}
                if status == 401:
                    entry["headers"] = _CHALLENGE
                elif status in (429, 503):
                    entry["headers"] = _RETRY_AFTER
                responses.setdefault(str(status), entry)
    return doc


def install_openapi(app: FastAPI, optional_identity: Callable[..., Any]) -> None:
    """Serve the completed document; `optional_identity`: see `_auth`."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_completed", None) is None:
            app.state.openapi_completed = complete(generate(), app, optional_identity)
        return app.state.openapi_completed  # type: ignore[no-any-return]

    app.openapi = openapi  # type: ignore[method-assign]
