"""The route class of every API route: request bodies decoded through the input boundary
(kit.input.CheckedRequest), and the response model serialized once, inside the endpoint's own thread hop.

Stock FastAPI validates a sync endpoint's return value again in a second threadpool hop before
serializing it. Our endpoints already build their response models, so this route dumps them to
JSON directly (validating only when the returned object is not already the response model), and
the OpenAPI document still comes from `response_model`.

`raw_json` is the one way to answer with JSON built without the response model (pre-rendered bytes, or
data shaped by a domain's `reads` module, timestamps already formatted by the database): every router
uses it, and so does the route class itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

from sailplane.kit.input import CheckedRequest


def raw_json(content: Any, status_code: int = 200) -> Response:
    """A JSON response from bytes as they are, or from data (dicts, lists, response models inside them)
    encoded by the serializer the response models use, models by their aliases."""
    body = content if isinstance(content, bytes) else to_json(content, by_alias=True)
    return Response(body, status_code=status_code, media_type="application/json")


class JsonRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        model = kwargs.get("response_model")
        status = kwargs.get("status_code") or 200
        if isinstance(model, type) and issubclass(model, BaseModel):
            endpoint = _wrap(endpoint, model, status)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def checked_handler(request: Request) -> Any:
            return await handler(CheckedRequest(request.scope, request.receive))

        return checked_handler


def _render(result: Any, model: type[BaseModel], adapter: TypeAdapter[Any], status: int) -> Any:
    if isinstance(result, Response):
        return result
    value = result if type(result) is model else adapter.validate_python(result, from_attributes=True)
    return raw_json(adapter.dump_json(value, by_alias=True), status)


def _wrap(endpoint: Callable[..., Any], model: type[BaseModel], status: int) -> Callable[..., Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return _render(await endpoint(*args, **kwargs), model, adapter, status)

        return async_wrapper

    @functools.wraps(endpoint)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        return _render(endpoint(*args, **kwargs), model, adapter, status)

    return sync_wrapper
