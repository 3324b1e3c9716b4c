"""The API's one error shape (`{"error": {code, message, errorType, details}}`) as typed exceptions, one class
per status family, so callers catch what they can act on (`except NotFoundError`) instead of parsing bodies."""

from __future__ import annotations

from typing import Any


class SailplaneError(Exception):
    """Anything the client raises."""


class ServerUnreachableError(SailplaneError):
    """No answer at all: the server is down, the address is wrong, or the connection broke."""


class ApiError(SailplaneError):
    """An answer in the error shape: `status`, `code`, `message`, `request_id` (quote it to an operator)."""

    def __init__(self, status: int, code: str, message: str, *, error_type: str = "", request_id: str | None = None,
                 details: dict[str, Any] | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status}" + (f", request {request_id})" if request_id else ")"))
        self.status = status
        self.code = code
        self.message = message
        self.error_type = error_type
        self.request_id = request_id
        self.details = details or {}
        self.retry_after = retry_after

    @property
    def field_errors(self) -> dict[str, str]:
        return dict(self.details.get("fieldErrors") or {})


class BadRequestError(ApiError):
    """400, 405, 413, 415, 422: the request itself is wrong (validation errors in `field_errors`)."""


class AuthenticationError(ApiError):
    """401: no token, a wrong password, or a token that expired or was revoked."""


class PermissionDeniedError(ApiError):
    """403."""


class NotFoundError(ApiError):
    """404 (also what another organization's or team's resource looks like)."""


class ConflictError(ApiError):
    """409: the resource's state does not allow it (a run already finished, a name taken)."""


class RateLimitError(ApiError):
    """429 after the client's bounded retries."""


class ServerError(ApiError):
    """5xx other than 503."""


class UnavailableError(ServerError):
    """503 (and 507) after the client's bounded retries: overloaded, or a dependency is down."""


_BY_STATUS: dict[int, type[ApiError]] = {401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
                                         409: ConflictError, 429: RateLimitError, 503: UnavailableError,
                                         507: UnavailableError}


def error_class(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return BadRequestError
