"""The Python SDK of the Sailplane API: `Client` (blocking) and `AsyncClient`, both driven by a snapshot of the
server's OpenAPI operations (`operations.json`, written by scripts/client_spec.py), with typed errors.

Imports only httpx and the standard library (no server code), so scripts and the CLI start fast."""

from sailplane.client.aio import AsyncClient
from sailplane.client.core import LogChunk
from sailplane.client.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SailplaneError,
    ServerError,
    ServerUnreachableError,
    UnavailableError,
)
from sailplane.client.sync import Client

__all__ = ["ApiError", "AsyncClient", "AuthenticationError", "BadRequestError", "Client", "ConflictError",
           "LogChunk", "NotFoundError", "PermissionDeniedError", "RateLimitError", "SailplaneError", "ServerError",
           "ServerUnreachableError", "UnavailableError"]
