"""The Python SDK of the Sailplane API: `Client` (blocking) and `AsyncClient`, both driven by a snapshot of the
server's OpenAPI operations (`operations.json`, written by scripts/client_spec.py), with typed errors.

Imports only httpx and the standard library (no server code), and those only when a name is first used
(PEP 562), so `sailplane --help` and the CLI's command modules start fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {"AsyncClient": "aio", "Client": "sync", "LogChunk": "core", **{name: "errors" for name in (
    "ApiError", "AuthenticationError", "BadRequestError", "ConflictError", "NotFoundError", "PermissionDeniedError",
    "RateLimitError", "SailplaneError", "ServerError", "ServerUnreachableError", "UnavailableError")}}

__all__ = ["ApiError", "AsyncClient", "AuthenticationError", "BadRequestError", "Client", "ConflictError",
           "LogChunk", "NotFoundError", "PermissionDeniedError", "RateLimitError", "SailplaneError", "ServerError",
           "ServerUnreachableError", "UnavailableError"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sailplane.client' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sailplane.client.{_WHERE[name]}"), name)
