"""The one error shape: {"error": {code, message, errorType, details{...}}} for every failure."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from sailplane.kit.faults import STORAGE_FULL_MESSAGE, storage_full_cause

log = logging.getLogger("sailplane.errors")

_TYPES = {
    400: "invalid_request",
    401: "authentication",
    403: "authorization",
    404: "not_found",
    405: "invalid_request",
    409: "conflict",
    413: "invalid_request",
    415: "invalid_request",
    422: "validation",
    429: "rate_limit",
    503: "unavailable",
    507: "unavailable",
}


class ApiError(Exception):
    """Raised by services; rendered by the handler below. Never carries secrets."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field_errors: dict[str, str] | None = None,
        retry_after: int | None = None,
        retryable: bool = False,
        caused_by: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field_errors = field_errors or {}
        self.retry_after = retry_after
        self.retryable = retryable
        self.caused_by = caused_by


class InputError(StarletteHTTPException):
    """A request refused at the input boundary. A Starlette HTTPException, so FastAPI's body parsing lets it
    through unchanged and install_error_handlers renders it in the one error shape."""

    def __init__(self, status: int, code: str, message: str, field_errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.field_errors = field_errors or {}


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"The {what} was not found.")


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def invalid(field: str, message: str, status: int = 422) -> ApiError:
    return ApiError(status, "validation_failed", f"{field}: {message}", field_errors={field: message})


def forbidden(message: str = "You are not allowed to perform this operation.") -> ApiError:
    return ApiError(403, "forbidden", message)


def unauthorized(message: str = "Authentication is required.") -> ApiError:
    return ApiError(401, "unauthorized", message)


def error_body(
    status: int,
    code: str,
    message: str,
    request: Request | None,
    *,
    field_errors: dict[str, str] | None = None,
    retry_after: int | None = None,
    retryable: bool = False,
    caused_by: str | None = None,
) -> dict[str, Any]:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    return {
        "error": {
            "code": code,
            "message": message,
            "errorType": _TYPES.get(status, "internal" if status >= 500 else "invalid_request"),
            "details": {
                "retryable": retryable,
                "retryAfter": retry_after,
                "fieldErrors": field_errors or {},
                "requestId": request_id,
                "causedBy": caused_by,
            },
        }
    }


AUTH_REALM = "sailplane"


def _challenge(request: Request | None, message: str) -> str:
    """The WWW-Authenticate challenge of a 401 (RFC 6750 section 3): the realm alone when the request carried no
    credentials, else `error="invalid_token"` with a description."""
    if request is None or not request.headers.get("authorization"):
        return f'Bearer realm="{AUTH_REALM}"'
    description = message.replace("\\", "").replace('"', "'")
    return f'Bearer realm="{AUTH_REALM}", error="invalid_token", error_description="{description}"'


def _response(status: int, body: dict[str, Any], retry_after: int | None = None,
              headers: dict[str, str] | None = None, request: Request | None = None) -> JSONResponse:
    out = dict(headers or {})
    if retry_after is not None:
        out["Retry-After"] = str(retry_after)
    if status == 401 and "WWW-Authenticate" not in out:
        out["WWW-Authenticate"] = _challenge(request, body["error"]["message"])
    return JSONResponse(body, status_code=status, headers=out or None)


def error_response(status: int, code: str, message: str, request: Request | None, *,
                   field_errors: dict[str, str] | None = None, retry_after: int | None = None,
                   retryable: bool = False, headers: dict[str, str] | None = None) -> JSONResponse:
    """A complete error answer in the one shape, with the headers its status calls for."""
    body = error_body(status, code, message, request, field_errors=field_errors, retry_after=retry_after,
                      retryable=retryable)
    return _response(status, body, retry_after, headers, request)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (the router names only the first route that matched it)."""
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        body = error_body(
            exc.status,
            exc.code,
            exc.message,
            request,
            field_errors=exc.field_errors,
            retry_after=exc.retry_after,
            retryable=exc.retryable,
            caused_by=exc.caused_by,
        )
        return _response(exc.status, body, exc.retry_after, request=request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields: dict[str, str] = {}
        malformed = False
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                malformed = True
            fields.setdefault(_field_path(err.get("loc", ())), str(err.get("msg", "invalid value")))
        if malformed:
            body = error_body(400, "malformed_json", "The request body is not valid JSON.", request,
                              field_errors=fields)
            return _response(400, body)
        in_query_or_path = all(
            (e.get("loc") or ("",))[0] in ("query", "path", "header") for e in exc.errors()
        )
        status = 400 if in_query_or_path else 422
        if in_query_or_path and set(fields) == {"sortBy"}:
            body = error_body(400, "invalid_sort_field", f"sortBy: {fields['sortBy']}", request, field_errors=fields)
            return _response(400, body)
        summary = "; ".join(f"{k}: {v}" for k, v in list(fields.items())[:5])
        body = error_body(status, "validation_failed", f"Invalid request: {summary}", request,
                          field_errors=fields)
        return _response(status, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Routing and input-boundary refusals. Their headers (405's Allow) are kept."""
        headers = dict(exc.headers or {})
        if isinstance(exc, InputError):
            return error_response(exc.status_code, exc.code, exc.message, request, field_errors=exc.field_errors,
                                  headers=headers)
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code,
                                                                                           "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = "The resource was not found."
        elif exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
            message = f"The method {request.method} is not allowed here; allowed: {headers['Allow'] or 'none'}."
        elif exc.status_code == 413:
            headers["Connection"] = "close"
        return error_response(exc.status_code, code, message, request, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", type(exc.orig).__name__)
        body = error_body(409, "conflict", "The request conflicts with an existing record.", request)
        return _response(409, body)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        """A value the database refused (out of range, too long): the input checks should have caught it, so it
        is logged as their gap; the caller gets a 422, not a 500, and nothing was written."""
        log.warning("database refused a value: %s", type(exc.orig).__name__)
        body = error_body(422, "invalid_value", "A value in the request does not fit its field.", request)
        return _response(422, body)

    def _storage_full(request: Request, cause: str) -> JSONResponse:
        """507: the disk is full. Not retryable as such (it takes an administrator), and not "busy"."""
        log.error("storage full: %s %s failed because the disk is full (%s); free disk space", request.method,
                  request.url.path, cause)
        body = error_body(507, "storage_full", STORAGE_FULL_MESSAGE, request)
        return _response(507, body)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        cause = storage_full_cause(exc)
        if cause is not None:
            return _storage_full(request, cause)
        log.warning("database unavailable: %s: %s", type(exc.orig).__name__, " ".join(str(exc.orig).split())[:500])
        body = error_body(503, "database_busy", "The database is busy; retry shortly.", request,
                          retryable=True, retry_after=1)
        return _response(503, body, 1)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        cause = storage_full_cause(exc)
        if cause is not None:
            return _storage_full(request, cause)
        log.exception("unhandled error")
        body = error_body(500, "internal_error", "An unexpected error occurred.", request, retryable=True)
        return _response(500, body)
