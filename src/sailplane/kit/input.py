"""The input boundary: what every request must satisfy before any endpoint sees it.

- the body is at most `max_request_bytes` (413), counted while it streams in, so an oversized body
  is refused before it is read whole, with or without a Content-Length;
- no NUL character anywhere: path, query string, headers (refused here, 422) or any string or key
  of a JSON body (refused by `CheckedRequest`, 422 naming the field); PostgreSQL cannot store NUL
  in text, and no name, SQL or setting of ours has a use for it;
- a JSON body is standard JSON (no NaN/Infinity, valid UTF-8; 400 otherwise) nested at most
  MAX_JSON_DEPTH levels (422);
- free-form JSON fields (`JsonObject`) are bounded in depth and encoded size on their own, so what
  is stored can always be read back and serialized.

Request models (kit.schemas.RequestModel) add the last rule: integers and booleans are taken as
they are, never converted from strings, floats or each other.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import AfterValidator, Field, JsonValue
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sailplane.kit.errors import InputError, error_response

MAX_JSON_DEPTH = 32
"""Nesting of a whole request body (objects and arrays)."""
FREE_JSON_DEPTH = 16
"""Nesting inside one free-form field, counting the field's own object as 1."""
FREE_JSON_BYTES = 64 * 1024
"""Encoded size (compact JSON, UTF-8) of one free-form field."""
DEFAULT_MAX_REQUEST_BYTES = 2 * 1024 * 1024
"""Default request body limit: room for the 1 MiB job source / SQL text, JSON-escaped."""
MAX_PAGE = 1_000_000
"""The largest `page` a page+limit listing accepts (offset = (page - 1) * limit stays far below 2**31)."""
MAX_BYTE_OFFSET = 2**53 - 1
"""The largest byte offset a log read accepts (an exact integer in every JSON implementation)."""


def _path(parts: list[str | int]) -> str:
    return ".".join(str(p) for p in parts) or "body"


def check_json(value: Any, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """(field path, problem) for the first NUL character or nesting beyond `max_depth` in a decoded JSON
    value, else None. Iterative: a hostile document cannot exhaust the stack here."""
    stack: list[tuple[Any, list[str | int], int]] = [(value, [], 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return _path(path), "must not contain NUL characters"
        elif isinstance(item, dict | list):
            if depth >= max_depth:  # named by its top-level field: the full path would be as long as the problem
                return _path(path[:1]), f"is nested too deeply (at most {max_depth} levels of objects and arrays)"
            if isinstance(item, dict):
                for key, child in item.items():
                    if "\x00" in key:
                        return _path(path), "must not contain NUL characters (in a property name)"
                    stack.append((child, [*path, key], depth + 1))
            else:
                stack.extend((child, [*path, i], depth + 1) for i, child in enumerate(item))
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> Any:
    """Standard JSON only, nested at most MAX_JSON_DEPTH levels, without NUL characters."""
    try:
        value = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise InputError(422, "validation_failed",
                         f"body: is nested too deeply (at most {MAX_JSON_DEPTH} levels of objects and arrays)",
                         {"body": f"is nested too deeply (at most {MAX_JSON_DEPTH} levels)"}) from None
    except ValueError as exc:  # JSONDecodeError, invalid UTF-8, NaN/Infinity, integers of over 4300 digits
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InputError(400, "malformed_json", "The request body is not valid JSON.",
                         {"body": detail[:200]}) from None
    problem = check_json(value)
    if problem is not None:
        field, message = problem
        raise InputError(422, "validation_failed", f"Invalid request: {field}: {message}", {field: message})
    return value


class CheckedRequest(Request):
    """The Request that kit.routing.JsonRoute hands to FastAPI: its JSON decoding applies decode_json."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


# --- free-form JSON fields ----------------------------------------------------------------------

def _bounded_object(value: dict[str, Any]) -> dict[str, Any]:
    problem = check_json(value, FREE_JSON_DEPTH)
    if problem is not None:
        raise ValueError(problem[1])
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > FREE_JSON_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {FREE_JSON_BYTES} are allowed")
    return value


JsonObject = Annotated[
    dict[str, JsonValue],
    AfterValidator(_bounded_object),
    Field(description=f"Free-form JSON object: at most {FREE_JSON_DEPTH} levels deep and {FREE_JSON_BYTES} bytes "
                      "as compact JSON."),
]
"""A free-form JSON object in a request, bounded so that what is stored can always be read back."""


def within_bounds(value: Any) -> bool:
    """True when a stored free-form value satisfies JsonObject's bounds (for values saved before they existed)."""
    try:
        _bounded_object(value)
    except (ValueError, TypeError):
        return False
    return isinstance(value, dict)


# --- the ASGI middleware ------------------------------------------------------------------------

class _TooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is larger than {limit} bytes.")


def _has_nul(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", ""):
        return "path"
    query: bytes = scope.get("query_string") or b""
    if b"\x00" in query or (b"%00" in query.lower() and b"\x00" in unquote_to_bytes(query)):
        return "query"
    for name, value in scope.get("headers") or []:
        if b"\x00" in name or b"\x00" in value:
            return "headers"
    return None


class InputGuardMiddleware:
    """Pure ASGI: refuses NUL in the request line and headers, and bodies over `max_body_bytes` (413)
    without reading them whole: at once when Content-Length says so, else as soon as the streamed
    (e.g. chunked) body passes the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                      field_errors: dict[str, str] | None = None) -> None:
        response = error_response(status, code, message, Request(scope), field_errors=field_errors)
        if status == 413:
            response.headers["Connection"] = "close"  # the unread body is not worth reading to keep the connection
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _has_nul(scope)
        if where is not None:
            await self._refuse(scope, receive, send, 422, "validation_failed",
                               f"Invalid request: the {where} must not contain NUL characters.",
                               {where: "must not contain NUL characters"})
            return
        limit = self.max_body_bytes
        length = None
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
        if length is not None and length > limit:
            await self._refuse(scope, receive, send, 413, "request_too_large",
                               f"The request body is larger than {limit} bytes.")
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, 413, "request_too_large",
                               f"The request body is larger than {limit} bytes.")
