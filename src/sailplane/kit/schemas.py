"""Pydantic base models: camelCase on the wire, strict about unknown fields in requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from sailplane.kit.clock import iso
from sailplane.kit.ids import ID_PATTERN

Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str, when_used="json")]

ResourceId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=2000)]


class ApiModel(BaseModel):
    """Response models: camelCase aliases, built from attributes."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""Bounds of every request integer that declares none: what any database column of ours holds."""


def _strict_numbers(schema: Any, seen: set[int]) -> None:
    """Integers, booleans and floats of a request model's core schema, strict: `false`, `"5"` or `5.0` is not
    an integer, `1` or `"true"` not a boolean (pydantic's lax mode would convert them). Integers without
    bounds get INT_MIN..INT_MAX, so no value can overflow a column. Other types (datetimes from ISO
    strings, enums from their values) keep their JSON conversions."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if id(node) in seen:
                continue
            seen.add(id(node))
            kind = node.get("type")
            if kind in ("int", "bool", "float"):
                node["strict"] = True
                if kind == "int":
                    if "le" not in node and "lt" not in node:
                        node["le"] = INT_MAX
                    if "ge" not in node and "gt" not in node:
                        node["ge"] = INT_MIN
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if not options:
        return schema
    kept = [o for o in options if o.get("type") != "null"]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}


class _NotNull:
    """Marks an optional request field that may be left out but not sent as null (`Annotated[X | None,
    NotNull] = None`): null is a 422 naming the field, and the published schema is X's, not nullable."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return _without_null(handler(schema))


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null")
    return value


NotNull = _NotNull()


def _published(schema: dict[str, Any], _model: type[BaseModel]) -> None:
    """A property that is not nullable has no `default: null` in the published schema (null is not a value it
    takes; leaving it out is how a client keeps the current or default value)."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None and not _nullable(prop):
            del prop["default"]


def _nullable(prop: dict[str, Any]) -> bool:
    if prop.get("type") == "null" or (isinstance(prop.get("type"), list) and "null" in prop["type"]):
        return True
    return any(o.get("type") == "null" for o in prop.get("anyOf", []) + prop.get("oneOf", []))


class RequestModel(BaseModel):
    """Request bodies: camelCase, unknown fields rejected so typos are not silently ignored, integers and
    booleans strict (see _strict_numbers)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              json_schema_extra=_published)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        _strict_numbers(schema, set())
        return schema


class CompactModel(ApiModel):
    """A response model whose null fields are left out of the JSON (stored settings, as they were given)."""

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class Message(ApiModel):
    message: str = Field(examples=["The requested operation was done successfully."])


DONE = {"message": "The requested operation was done successfully."}
