"""HTTP routes of /notifications: event types, channels, rules and the delivery history. Who may do what is
`service`'s (through iam.auth.authz): a member manages their own channels and rules, team and organization ones
need CanManageNotifications there; another organization's are 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from sailplane.iam.auth.deps import AppSettings, CurrentPrincipal, Db
from sailplane.kit.context import RequestContext, request_context
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, marker_params
from sailplane.kit.routing import JsonRoute
from sailplane.kit.schemas import DONE, Message
from sailplane.notifications import event_types, sending, service
from sailplane.notifications.schemas import (
    ChannelDetail,
    ChannelList,
    ChannelView,
    CreateChannelRequest,
    CreateRuleRequest,
    DeliveryList,
    DeliveryStatus,
    DeliveryView,
    EventTypeList,
    EventTypeView,
    RuleDetail,
    RuleList,
    RuleView,
    ScopeType,
    UpdateChannelRequest,
    UpdateRuleRequest,
)

router = APIRouter(route_class=JsonRoute, prefix="/notifications", tags=["notifications"])
Ctx = Annotated[RequestContext, Depends(request_context)]
Page = Annotated[MarkerPage, Depends(marker_params)]
ChannelId = Annotated[str, Path(alias="channel", pattern=ID_PATTERN, description="A notification channel ID.")]
RuleId = Annotated[str, Path(alias="rule", pattern=ID_PATTERN, description="A notification rule ID.")]


TeamQuery = Annotated[str | None, Query(alias="teamId", pattern=ID_PATTERN, max_length=20,
                                        description="Filter by team ID.")]
MemberQuery = Annotated[str | None, Query(alias="memberId", pattern=ID_PATTERN, max_length=20,
                                          description="Filter by member ID.")]


@router.get("/event-types", operation_id="listNotificationEventTypes", response_model=EventTypeList)
def list_event_types(principal: CurrentPrincipal) -> EventTypeList:
    """The event types rules may subscribe to; shortcut types (`expandsTo` not empty) expand at rule creation."""
    return EventTypeList(items=[EventTypeView(key=t.key, resource_type=t.resource_type, label=t.label,
                                              description=t.description, expands_to=list(t.expands_to))
                                for t in event_types.CATALOG])


@router.get("/channels", operation_id="listNotificationChannels", response_model=ChannelList)
def list_channels(principal: CurrentPrincipal, db: Db, page: Page, team_id: TeamQuery = None,
                  member_id: MemberQuery = None) -> ChannelList:
    """The channels the caller sees: the organization's, their teams' and their own (oldest first)."""
    total, rows, marker = service.list_channels(db, principal, page, team_id=team_id, member_id=member_id)
    return ChannelList(total=total, items=[service.channel_view(r) for r in rows], marker=marker)


@router.post("/channels", operation_id="createNotificationChannel", response_model=ChannelView, status_code=201)
def create_channel(body: CreateChannelRequest, principal: CurrentPrincipal, db: Db, ctx: Ctx,
                   settings: AppSettings) -> ChannelView:
    """A channel of a member (`memberId`: the caller's own), a team (`teamId`) or the organization (neither).
    Its secrets are stored encrypted and never answered."""
    return service.channel_view(service.create_channel(db, principal, body, ctx, settings))


@router.get("/channels/{channel}", operation_id="describeNotificationChannel", response_model=ChannelDetail)
def describe_channel(channel_id: ChannelId, principal: CurrentPrincipal, db: Db) -> ChannelDetail:
    return ChannelDetail(item=service.channel_view(service.get_channel(db, principal, channel_id)))


@router.delete("/channels/{channel}", operation_id="deleteNotificationChannel", response_model=Message)
def delete_channel(channel_id: ChannelId, principal: CurrentPrincipal, db: Db, ctx: Ctx) -> dict[str, str]:
    """Delete the channel; rules stop naming it (a rule left without channels is disabled)."""
    service.delete_channel(db, principal, channel_id, ctx)
    return DONE


@router.patch("/channels/{channel}", operation_id="updateNotificationChannel", response_model=ChannelView)
def update_channel(channel_id: ChannelId, body: UpdateChannelRequest, principal: CurrentPrincipal, db: Db,
                   ctx: Ctx, settings: AppSettings) -> ChannelView:
    return service.channel_view(service.update_channel(db, principal, channel_id, body, ctx, settings))


@router.post("/channels/{channel}/test", operation_id="sendTestNotification", response_model=DeliveryView)
def send_test_notification(channel_id: ChannelId, principal: CurrentPrincipal, db: Db, settings: AppSettings,
                           request: Request) -> DeliveryView:
    """Send a test message now (one attempt) and answer its delivery: `status` delivered or failed,
    `responseCode`, `lastError`. On success the channel's `verifiedAt` is set."""
    row = sending.send_test(db, principal, channel_id, settings, request.app.state.mailer)
    return service.delivery_view(row)


@router.get("/rules", operation_id="listNotificationRules", response_model=RuleList)
def list_rules(principal: CurrentPrincipal, db: Db, page: Page, team_id: TeamQuery = None,
               member_id: MemberQuery = None,
               resource_type: Annotated[str | None, Query(alias="resourceType", max_length=40,
                                                          description="Filter rules by resource type.")] = None,
               scope_type: Annotated[ScopeType | None, Query(alias="scopeType",
                                                             description="Filter rules by scope type.")] = None,
               ) -> RuleList:
    total, rows, marker = service.list_rules(db, principal, page, team_id=team_id, member_id=member_id,
                                             resource_type=resource_type, scope_type=scope_type)
    return RuleList(total=total, items=[service.rule_view(r) for r in rows], marker=marker)


@router.post("/rules", operation_id="createNotificationRule", response_model=RuleView, status_code=201)
def create_rule(body: CreateRuleRequest, principal: CurrentPrincipal, db: Db, ctx: Ctx) -> RuleView:
    """Map event types to channels for a scope. Shortcut event types are expanded now; every channel must exist."""
    return service.rule_view(service.create_rule(db, principal, body, ctx))


@router.get("/rules/{rule}", operation_id="describeNotificationRule", response_model=RuleDetail)
def describe_rule(rule_id: RuleId, principal: CurrentPrincipal, db: Db) -> RuleDetail:
    return RuleDetail(item=service.rule_view(service.get_rule(db, principal, rule_id)))


@router.delete("/rules/{rule}", operation_id="deleteNotificationRule", response_model=Message)
def delete_rule(rule_id: RuleId, principal: CurrentPrincipal, db: Db, ctx: Ctx) -> dict[str, str]:
    service.delete_rule(db, principal, rule_id, ctx)
    return DONE


@router.patch("/rules/{rule}", operation_id="updateNotificationRule", response_model=RuleView)
def update_rule(rule_id: RuleId, body: UpdateRuleRequest, principal: CurrentPrincipal, db: Db,
                ctx: Ctx) -> RuleView:
    """Change the rule, or enable/disable it (`enabled`)."""
    return service.rule_view(service.update_rule(db, principal, rule_id, body, ctx))


@router.get("/deliveries", operation_id="listNotificationDeliveries", response_model=DeliveryList)
def list_deliveries(principal: CurrentPrincipal, db: Db, page: Page,
                    channel_id: Annotated[str | None, Query(alias="channelId", pattern=ID_PATTERN, max_length=20,
                                                            description="Filter by channel ID.")] = None,
                    rule_id: Annotated[str | None, Query(alias="ruleId", pattern=ID_PATTERN, max_length=20,
                                                         description="Filter by rule ID.")] = None,
                    status: Annotated[DeliveryStatus | None, Query(description="Filter by delivery status.")] = None,
                    ) -> DeliveryList:
    """Deliveries to the channels the caller sees, newest first: status, attempts, last response code and error,
    timing."""
    total, rows, marker = service.list_deliveries(db, principal, page, channel_id=channel_id, rule_id=rule_id,
                                                  status=status)
    return DeliveryList(total=total, items=[service.delivery_view(r) for r in rows], marker=marker)
