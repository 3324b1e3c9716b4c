"""Pydantic base models: camelCase on the wire, strict about unknown fields in requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints
from pydantic.alias_generators import to_camel

from sailplane.kit.clock import iso
from sailplane.kit.ids import ID_PATTERN

Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str, when_used="json")]

ResourceId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=2000)]


class ApiModel(BaseModel):
    """Response models: camelCase aliases, built from attributes."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class RequestModel(BaseModel):
    """Request bodies: camelCase, unknown fields rejected so typos are not silently ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Message(ApiModel):
    message: str = Field(examples=["The requested operation was done successfully."])


DONE = {"message": "The requested operation was done successfully."}
