"""Wire shapes of /notifications (public-docs-notes: event types and channels; rules and deliveries ours in the
same style)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from sailplane.kit.schemas import (
    ApiModel,
    CompactModel,
    Description,
    Name,
    NotNull,
    RequestModel,
    ResourceId,
    Timestamp,
)

ChannelType = Literal["email", "slack", "webhook", "pager_duty", "rootly"]
ScopeType = Literal["resource", "team", "organization", "own_resources"]
DeliveryStatus = Literal["pending", "delivering", "delivered", "failed", "skipped"]
EventKey = Annotated[str, Field(min_length=1, max_length=80)]


class EventTypeView(ApiModel):
    key: str
    resource_type: str
    label: str
    description: str
    expands_to: list[str] = Field(description="The event types a shortcut stands for (empty: not a shortcut).")


class EventTypeList(ApiModel):
    items: list[EventTypeView]


class ChannelConfigView(CompactModel):
    """A channel's settings as answered (those of its type only). Secrets are never answered: `…Set` says one
    is stored."""

    member_id: str | None = Field(default=None, description="email: the member emailed.")
    team_id: str | None = Field(default=None, description="email: the team whose members are emailed.")
    url: str | None = Field(default=None, description="webhook: where deliveries are POSTed.")
    signing_secret_set: bool | None = Field(default=None, description="webhook: deliveries carry LakeSail-Signature.")
    channel: str | None = Field(default=None, description="slack: the channel named in messages.")
    webhook_url_set: bool | None = Field(default=None, description="slack: the incoming webhook URL is stored.")
    severity: str | None = Field(default=None, description="pager_duty, rootly: the alerts' severity.")
    routing_key_set: bool | None = Field(default=None, description="pager_duty: the integration key is stored.")
    api_token_set: bool | None = Field(default=None, description="rootly: the API token is stored.")


class ChannelView(ApiModel):
    """A channel. `config` carries the type's public settings only: secrets (signing secret, Slack webhook URL,
    PagerDuty routing key, Rootly token) are never answered, only whether one is set (`…Set`)."""

    id: str
    type: str
    name: str
    team_id: str | None = None
    member_id: str | None = None
    config: ChannelConfigView
    status: str = Field(description="active")
    status_message: str | None = None
    verified_at: Timestamp | None = Field(default=None, description="When a test notification last got through.")
    created_at: Timestamp
    created_by: str | None = None
    updated_at: Timestamp
    updated_by: str | None = None


class ChannelList(ApiModel):
    total: int
    items: list[ChannelView]
    marker: str | None = None


class ChannelDetail(ApiModel):
    item: ChannelView


class CreateChannelRequest(RequestModel):
    """`config` by type: email `{memberId}` or `{teamId}` (the recipients; default: the channel's member);
    webhook `{url, signingSecret?}`; slack `{webhookUrl, channel?}`; pager_duty `{routingKey, severity?}`;
    rootly `{apiToken, severity?}`. Without `teamId` or `memberId` the channel is the organization's."""

    type: ChannelType
    name: Name
    team_id: Annotated[ResourceId | None, NotNull] = None
    member_id: Annotated[ResourceId | None, NotNull] = None
    config: dict[str, Any] = Field(default_factory=dict)


class UpdateChannelRequest(RequestModel):
    """Fields of `config` given replace the stored ones (a secret given is replaced; leaving it out keeps it)."""

    name: Annotated[Name | None, NotNull] = None
    config: Annotated[dict[str, Any] | None, NotNull] = None


class RuleView(ApiModel):
    id: str
    name: str
    description: str | None = None
    team_id: str | None = None
    member_id: str | None = None
    resource_type: str
    scope_type: str
    resource_id: str | None = None
    event_types: list[str] = Field(description="Concrete event types (shortcuts were expanded at creation).")
    channel_ids: list[str]
    enabled: bool
    created_at: Timestamp
    created_by: str | None = None
    updated_at: Timestamp
    updated_by: str | None = None


class RuleList(ApiModel):
    total: int
    items: list[RuleView]
    marker: str | None = None


class RuleDetail(ApiModel):
    item: RuleView


class CreateRuleRequest(RequestModel):
    """`scopeType`: organization (every resource), team (`teamId`'s), resource (`resourceId`, a job for job run
    events) or own_resources (the caller's). Every channel must exist already."""

    name: Name
    description: Annotated[Description | None, NotNull] = None
    event_types: list[EventKey] = Field(min_length=1, max_length=50)
    channel_ids: list[ResourceId] = Field(min_length=1, max_length=20)
    scope_type: ScopeType
    team_id: Annotated[ResourceId | None, NotNull] = None
    resource_id: Annotated[ResourceId | None, NotNull] = None
    enabled: bool = True


class UpdateRuleRequest(RequestModel):
    name: Annotated[Name | None, NotNull] = None
    description: Annotated[Description | None, NotNull] = None
    event_types: Annotated[list[EventKey] | None, NotNull, Field(min_length=1, max_length=50)] = None
    channel_ids: Annotated[list[ResourceId] | None, NotNull, Field(min_length=1, max_length=20)] = None
    enabled: Annotated[bool | None, NotNull] = None


class DeliveryView(ApiModel):
    id: str
    channel_id: str
    rule_id: str | None = None
    event_type: str
    resource_type: str
    resource_id: str | None = None
    status: str = Field(description="pending, delivering, delivered, failed (given up) or skipped.")
    attempts: int
    response_code: int | None = None
    last_error: str | None = None
    next_attempt_at: Timestamp | None = None
    first_attempt_at: Timestamp | None = None
    last_attempt_at: Timestamp | None = None
    delivered_at: Timestamp | None = None
    duration_ms: int | None = Field(default=None, description="The last attempt's duration.")
    created_at: Timestamp
    updated_at: Timestamp


class DeliveryList(ApiModel):
    total: int
    items: list[DeliveryView]
    marker: str | None = None
