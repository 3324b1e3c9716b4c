"""The one error shape: {"error": {code, message, errorType, details{...}}} for every failure."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def _response(status: int, body: dict[str, Any], retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


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
        return _response(exc.status, body, exc.retry_after)

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
        summary = "; ".join(f"{k}: {v}" for k, v in list(fields.items())[:5])
        body = error_body(status, "validation_failed", f"Invalid request: {summary}", request,
                          field_errors=fields)
        return _response(status, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = "The resource was not found."
        return _response(exc.status_code, error_body(exc.status_code, code, message, request))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", type(exc.orig).__name__)
        body = error_body(409, "conflict", "The request conflicts with an existing record.", request)
        return _response(409, body)

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
