"""Wire shapes for organization policies: extra organization-wide permissions for one principal."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from sailplane.kit.schemas import ApiModel, RequestModel, Timestamp

PrincipalType = Literal["user", "team", "service_account"]
PermissionName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class PrincipalRef(ApiModel):
    type: PrincipalType = Field(description="user (a member, by user ID), team, or service_account.")
    id: str


class PolicyView(ApiModel):
    principal: PrincipalRef
    permissions: list[str]
    created_at: Timestamp
    created_by: str | None
    updated_at: Timestamp
    updated_by: str | None


class PolicyList(ApiModel):
    items: list[PolicyView]
    marker: str | None = None


class SetPolicyRequest(RequestModel):
    permissions: list[PermissionName] = Field(
        max_length=200, description="Replaces the principal's permissions; see listPermissions for the names."
    )
