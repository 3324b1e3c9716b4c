"""Notification channels, rules and the delivery history: validation, ownership and access.

A channel or rule belongs to a member, a team or the organization (`iam.auth.authz.may_manage_notifications`,
`sees_notifications_of`): outside the caller's view it is a 404, visible but not theirs to change a 403, another
organization's a 404 (every query is scoped by the caller's organization). A channel's secrets are encrypted at
rest (kit.crypto.Encryptor) and never answered nor audited. A rule's shortcut event types are expanded here, at
creation, and every channel it names must exist and be visible to its author.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from sailplane.config import Settings
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor
from sailplane.kit.errors import forbidden, invalid, not_found
from sailplane.kit.ids import ID_PATTERN
from sailplane.kit.pagination import MarkerPage, apply_marker, count, split_marker
from sailplane.notifications import event_types
from sailplane.notifications.models import NotificationChannel, NotificationDelivery, NotificationRule
from sailplane.notifications.schemas import (
    ChannelConfigView,
    ChannelView,
    CreateChannelRequest,
    CreateRuleRequest,
    DeliveryView,
    RuleView,
    UpdateChannelRequest,
    UpdateRuleRequest,
)
from sailplane.notifications.urls import UnsafeUrl, check_url
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.teams.models import Team
from sailplane.workloads.jobs.models import Job

CHANNEL, RULE = "notification_channel", "notification_rule"
ORGANIZATION, TEAM, RESOURCE, OWN = "organization", "team", "resource", "own_resources"
_ID = re.compile(ID_PATTERN)
_ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
SEVERITIES = ("critical", "error", "warning", "info")
# type → (public config fields, secret config fields)
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("memberId", "teamId"), ()),
    "webhook": (("url",), ("signingSecret",)),
    "slack": (("channel",), ("webhookUrl",)),
    "pager_duty": (("severity",), ("routingKey",)),
    "rootly": (("severity",), ("apiToken",)),
}


# --- channels ----------------------------------------------------------------------------------------------

def _in_org(db: Session, principal: Principal, team_id: str | None, member_id: str | None, field: str) -> None:
    org = principal.organization_id
    if team_id is not None and db.scalar(select(Team.id).where(Team.id == team_id, Team.organization_id == org)) \
            is None:
        raise invalid(f"{field}teamId", "no such team in the organization")
    if member_id is not None and db.scalar(select(Member.id).where(Member.id == member_id,
                                                                   Member.organization_id == org)) is None:
        raise invalid(f"{field}memberId", "no such member in the organization")


def _text(config: dict[str, Any], key: str, *, max_length: int = 2048) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length or "\x00" in value:
        raise invalid(f"config.{key}", f"must be a non-empty string of at most {max_length} characters")
    return value.strip()


def _validate(db: Session, principal: Principal, kind: str, config: dict[str, Any], settings: Settings,
              owner: tuple[str | None, str | None]) -> tuple[dict[str, Any], dict[str, str]]:
    """The channel's public config and its secrets, from the full config (stored values merged in)."""
    public_fields, secret_fields = FIELDS[kind]
    for key in config:
        if key not in public_fields + secret_fields:
            raise invalid(f"config.{key}", f"is not a setting of {kind} channels")
    public: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    if kind == "email":
        member_id, team_id = _text(config, "memberId", max_length=20), _text(config, "teamId", max_length=20)
        if member_id and team_id:
            raise invalid("config.teamId", "an email channel goes to a member or to a team, not both")
        for key, value in (("memberId", member_id), ("teamId", team_id)):
            if value is not None and not _ID.match(value):
                raise invalid(f"config.{key}", "must be an ID")
        if member_id is None and team_id is None:
            team_id, member_id = owner[0], owner[1] or (principal.member.id if principal.member else None)
            if team_id is None and member_id is None:
                raise invalid("config.memberId", "name the member or the team to email")
        _in_org(db, principal, team_id, member_id, "config.")
        public = {"memberId": member_id} if member_id else {"teamId": team_id}
    elif kind == "webhook":
        url = _text(config, "url")
        if url is None:
            raise invalid("config.url", "is required")
        try:
            check_url(url, allow_loopback=settings.notifications_allow_loopback, nameservers=settings.dns_nameservers,
                      timeout=settings.dns_timeout_seconds)
        except UnsafeUrl as exc:
            raise invalid("config.url", str(exc)) from None
        public = {"url": url}
        secret = _text(config, "signingSecret", max_length=256)
        if secret is not None:
            if len(secret) < 16:
                raise invalid("config.signingSecret", "must be at least 16 characters")
            secrets["signingSecret"] = secret
    elif kind == "slack":
        url = _text(config, "webhookUrl")
        if url is None or not url.startswith(settings.slack_webhook_base):
            raise invalid("config.webhookUrl", f"must be a Slack incoming webhook URL ({settings.slack_webhook_base}…)")
        secrets["webhookUrl"] = url
        channel = _text(config, "channel", max_length=80)
        if channel is not None:
            public["channel"] = channel
    else:  # pager_duty, rootly
        key = "routingKey" if kind == "pager_duty" else "apiToken"
        value = _text(config, key, max_length=512)
        if value is None:
            raise invalid(f"config.{key}", "is required")
        if kind == "pager_duty" and not _ROUTING_KEY.match(value):
            raise invalid("config.routingKey", "must be a PagerDuty Events API v2 integration key (32 characters)")
        secrets[key] = value
        severity = config.get("severity", "error")
        if severity not in SEVERITIES:
            raise invalid("config.severity", f"must be one of {', '.join(SEVERITIES)}")
        public["severity"] = severity
    return public, secrets


def secrets_of(row: NotificationChannel, encryptor: Encryptor) -> dict[str, str]:
    return json.loads(encryptor.decrypt(row.secret)) if row.secret else {}


def channel_view(row: NotificationChannel) -> ChannelView:
    secret_keys = row.config.get("_secretKeys") or []
    config = {k: v for k, v in row.config.items() if not k.startswith("_")}
    config.update({f"{k}Set": True for k in secret_keys})
    return ChannelView(id=row.id, type=row.type, name=row.name, team_id=row.team_id, member_id=row.member_id,
                       config=ChannelConfigView.model_validate(config), status=row.status,
                       status_message=row.status_message,
                       verified_at=row.verified_at, created_at=row.created_at, created_by=row.created_by,
                       updated_at=row.updated_at, updated_by=row.updated_by)


def _store(row: NotificationChannel, public: dict[str, Any], secrets: dict[str, str], encryptor: Encryptor) -> None:
    row.config = {**public, "_secretKeys": sorted(secrets)}  # names only: "…Set" in the view
    row.secret = encryptor.encrypt(json.dumps(secrets)) if secrets else None


def get_channel(db: Session, principal: Principal, channel_id: str, *, manage: bool = False) -> NotificationChannel:
    row: NotificationChannel | None = db.scalar(select(NotificationChannel).where(
        NotificationChannel.id == channel_id, NotificationChannel.organization_id == principal.organization_id))
    if row is None or not authz.sees_notifications_of(principal, row.team_id, row.member_id):
        raise not_found("notification channel")
    if manage and not authz.may_manage_notifications(principal, row.team_id, row.member_id):
        raise forbidden()
    return row


def _page(db: Session, stmt: Any, id_column: Any, page: MarkerPage) -> tuple[int, list[Any], str | None]:
    rows = list(db.scalars(apply_marker(stmt, id_column, page)))
    items, marker = split_marker(rows, page)
    return count(db, stmt), items, marker


def _visible(stmt: Any, principal: Principal, model: Any) -> Any:
    clause: ColumnElement[bool] | None = authz.notifications_visible_to(principal, model.team_id, model.member_id)
    return stmt if clause is None else stmt.where(clause)


def list_channels(db: Session, principal: Principal, page: MarkerPage, *, team_id: str | None,
                  member_id: str | None) -> tuple[int, list[NotificationChannel], str | None]:
    stmt = _visible(select(NotificationChannel).where(
        NotificationChannel.organization_id == principal.organization_id), principal, NotificationChannel)
    if team_id is not None:
        stmt = stmt.where(NotificationChannel.team_id == team_id)
    if member_id is not None:
        stmt = stmt.where(NotificationChannel.member_id == member_id)
    return _page(db, stmt, NotificationChannel.id, page)


def create_channel(db: Session, principal: Principal, body: CreateChannelRequest, ctx: RequestContext,
                   settings: Settings) -> NotificationChannel:
    if body.team_id is not None and body.member_id is not None:
        raise invalid("memberId", "a channel belongs to a team or to a member, not both")
    _in_org(db, principal, body.team_id, body.member_id, "")
    if not authz.sees_notifications_of(principal, body.team_id, body.member_id) and body.team_id is not None:
        raise invalid("teamId", "no such team in the organization")
    if not authz.may_manage_notifications(principal, body.team_id, body.member_id):
        raise forbidden()
    public, secrets = _validate(db, principal, body.type, body.config, settings, (body.team_id, body.member_id))
    row = NotificationChannel(organization_id=principal.organization_id, type=body.type, name=body.name,
                              team_id=body.team_id, member_id=body.member_id, status="active",
                              created_by=principal.actor_id, updated_by=principal.actor_id)
    _store(row, public, secrets, Encryptor(settings.secret_key))
    db.add(row)
    db.flush()
    audit.record(db, ctx, principal, "notification_channel.create", CHANNEL, row.id,
                 details={"name": row.name, "type": row.type})
    return row


def update_channel(db: Session, principal: Principal, channel_id: str, body: UpdateChannelRequest,
                   ctx: RequestContext, settings: Settings) -> NotificationChannel:
    row = get_channel(db, principal, channel_id, manage=True)
    if body.name is not None:
        row.name = body.name
    if body.config is not None:
        encryptor = Encryptor(settings.secret_key)
        stored = {k: v for k, v in row.config.items() if not k.startswith("_")}
        if row.type == "email" and ({"memberId", "teamId"} & set(body.config)):
            stored = {}  # a new recipient replaces the old one
        public, secrets = _validate(db, principal, row.type, {**stored, **secrets_of(row, encryptor), **body.config},
                                    settings, (row.team_id, row.member_id))
        _store(row, public, secrets, encryptor)
        row.verified_at = None  # the new settings have not been tested
    row.updated_by = principal.actor_id
    db.flush()
    audit.record(db, ctx, principal, "notification_channel.update", CHANNEL, row.id, details={"name": row.name})
    return row


def delete_channel(db: Session, principal: Principal, channel_id: str, ctx: RequestContext) -> None:
    row = get_channel(db, principal, channel_id, manage=True)
    rules = db.scalars(select(NotificationRule).where(
        NotificationRule.organization_id == principal.organization_id)).all()
    for rule in rules:  # rules stop naming the channel; deliveries keep their history
        if row.id in rule.channel_ids:
            rule.channel_ids = [c for c in rule.channel_ids if c != row.id]
            if not rule.channel_ids:
                rule.enabled = False
    db.delete(row)
    db.flush()
    audit.record(db, ctx, principal, "notification_channel.delete", CHANNEL, channel_id)


# --- rules --------------------------------------------------------------------------------------------------

def rule_view(row: NotificationRule) -> RuleView:
    return RuleView(id=row.id, name=row.name, description=row.description, team_id=row.team_id,
                    member_id=row.member_id, resource_type=row.resource_type, scope_type=row.scope_type,
                    resource_id=row.resource_id, event_types=list(row.event_types),
                    channel_ids=list(row.channel_ids), enabled=row.enabled, created_at=row.created_at,
                    created_by=row.created_by, updated_at=row.updated_at, updated_by=row.updated_by)


def get_rule(db: Session, principal: Principal, rule_id: str, *, manage: bool = False) -> NotificationRule:
    row: NotificationRule | None = db.scalar(select(NotificationRule).where(
        NotificationRule.id == rule_id, NotificationRule.organization_id == principal.organization_id))
    if row is None or not authz.sees_notifications_of(principal, row.team_id, row.member_id):
        raise not_found("notification rule")
    if manage and not authz.may_manage_notifications(principal, row.team_id, row.member_id):
        raise forbidden()
    return row


def list_rules(db: Session, principal: Principal, page: MarkerPage, *, team_id: str | None, member_id: str | None,
               resource_type: str | None, scope_type: str | None) -> tuple[int, list[NotificationRule], str | None]:
    stmt = _visible(select(NotificationRule).where(NotificationRule.organization_id == principal.organization_id),
                    principal, NotificationRule)
    for column, value in ((NotificationRule.team_id, team_id), (NotificationRule.member_id, member_id),
                          (NotificationRule.resource_type, resource_type),
                          (NotificationRule.scope_type, scope_type)):
        if value is not None:
            stmt = stmt.where(column == value)
    return _page(db, stmt, NotificationRule.id, page)


def _event_types(keys: list[str]) -> tuple[str, list[str]]:
    """The rule's resource type and concrete event types (422 naming the field)."""
    for i, key in enumerate(keys):
        if key not in event_types.BY_KEY:
            raise invalid(f"eventTypes[{i}]", f"unknown event type {key!r} (see listNotificationEventTypes)")
    kinds = {event_types.BY_KEY[k].resource_type for k in keys}
    if len(kinds) > 1:
        raise invalid("eventTypes", "a rule's event types must all be of one resource type")
    return kinds.pop(), event_types.expand(keys)


def _channels(db: Session, principal: Principal, channel_ids: list[str]) -> list[str]:
    found = {c.id: c for c in db.scalars(select(NotificationChannel).where(
        NotificationChannel.organization_id == principal.organization_id,
        NotificationChannel.id.in_(channel_ids)))}
    for i, channel_id in enumerate(channel_ids):
        channel = found.get(channel_id)
        if channel is None or not authz.sees_notifications_of(principal, channel.team_id, channel.member_id):
            raise invalid(f"channelIds[{i}]", "no such notification channel (create the channel first)")
    return list(dict.fromkeys(channel_ids))


def create_rule(db: Session, principal: Principal, body: CreateRuleRequest, ctx: RequestContext) -> NotificationRule:
    resource_type, keys = _event_types(body.event_types)
    team_id = member_id = resource_id = None
    if body.scope_type == TEAM:
        if body.team_id is None:
            raise invalid("teamId", "is required for a team scope")
        _in_org(db, principal, body.team_id, None, "")
        if not authz.can_see_team(principal, body.team_id) and not authz.has(principal, authz.MANAGE_NOTIFICATIONS):
            raise invalid("teamId", "no such team in the organization")
        team_id = body.team_id
    elif body.scope_type == RESOURCE:
        if body.resource_id is None:
            raise invalid("resourceId", "is required for a resource scope")
        if resource_type != event_types.JOB_RUN:
            raise invalid("scopeType", "only job run rules may name one resource (a job) today")
        job = db.scalar(select(Job.id).where(Job.id == body.resource_id,
                                             Job.organization_id == principal.organization_id,
                                             authz.jobs_visible_to(principal)))
        if job is None:
            raise invalid("resourceId", "no such job")
        resource_id, team_id = body.resource_id, body.team_id
        if team_id is None:
            member_id = principal.member.id if principal.member is not None else None
    elif body.scope_type == OWN:
        if principal.member is None:
            raise invalid("scopeType", "a service account has no resources of its own")
        member_id = principal.member.id
    if body.scope_type != TEAM and body.scope_type != RESOURCE and body.team_id is not None:
        raise invalid("teamId", f"is only for team or resource scopes, not {body.scope_type}")
    if body.scope_type != RESOURCE and body.resource_id is not None:
        raise invalid("resourceId", "is only for a resource scope")
    if not authz.may_manage_notifications(principal, team_id, member_id):
        raise forbidden()
    channels = _channels(db, principal, body.channel_ids)
    row = NotificationRule(organization_id=principal.organization_id, name=body.name, description=body.description,
                           team_id=team_id, member_id=member_id, resource_type=resource_type,
                           scope_type=body.scope_type, resource_id=resource_id, event_types=keys,
                           channel_ids=channels, enabled=body.enabled, created_by=principal.actor_id,
                           updated_by=principal.actor_id)
    db.add(row)
    db.flush()
    audit.record(db, ctx, principal, "notification_rule.create", RULE, row.id,
                 details={"name": row.name, "eventTypes": keys, "channelIds": channels})
    return row


def update_rule(db: Session, principal: Principal, rule_id: str, body: UpdateRuleRequest,
                ctx: RequestContext) -> NotificationRule:
    row = get_rule(db, principal, rule_id, manage=True)
    if body.name is not None:
        row.name = body.name
    if body.description is not None:
        row.description = body.description
    if body.event_types is not None:
        resource_type, keys = _event_types(body.event_types)
        if resource_type != row.resource_type:
            raise invalid("eventTypes", f"must be {row.resource_type} event types, as the rule's")
        row.event_types = keys
    if body.channel_ids is not None:
        row.channel_ids = _channels(db, principal, body.channel_ids)
    if body.enabled is not None:
        row.enabled = body.enabled
    row.updated_by = principal.actor_id
    db.flush()
    audit.record(db, ctx, principal, "notification_rule.update", RULE, row.id,
                 details={"enabled": row.enabled})
    return row


def delete_rule(db: Session, principal: Principal, rule_id: str, ctx: RequestContext) -> None:
    row = get_rule(db, principal, rule_id, manage=True)
    db.delete(row)
    db.flush()
    audit.record(db, ctx, principal, "notification_rule.delete", RULE, rule_id)


# --- deliveries ---------------------------------------------------------------------------------------------

def delivery_view(row: NotificationDelivery) -> DeliveryView:
    return DeliveryView(id=row.id, channel_id=row.channel_id, rule_id=row.rule_id, event_type=row.event_type,
                        resource_type=row.resource_type, resource_id=row.resource_id, status=row.status,
                        attempts=row.attempts, response_code=row.response_code, last_error=row.last_error,
                        next_attempt_at=row.next_attempt_at, first_attempt_at=row.first_attempt_at,
                        last_attempt_at=row.last_attempt_at, delivered_at=row.delivered_at,
                        duration_ms=row.duration_ms, created_at=row.created_at, updated_at=row.updated_at)


def list_deliveries(db: Session, principal: Principal, page: MarkerPage, *, channel_id: str | None,
                    rule_id: str | None, status: str | None) -> tuple[int, list[NotificationDelivery], str | None]:
    """The deliveries to the channels the caller sees, newest first."""
    visible = _visible(select(NotificationChannel.id).where(
        NotificationChannel.organization_id == principal.organization_id), principal, NotificationChannel)
    stmt = select(NotificationDelivery).where(NotificationDelivery.organization_id == principal.organization_id,
                                              NotificationDelivery.channel_id.in_(visible))
    for column, value in ((NotificationDelivery.channel_id, channel_id), (NotificationDelivery.rule_id, rule_id),
                          (NotificationDelivery.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    rows = list(db.scalars(apply_marker(stmt, NotificationDelivery.id, page, newest_first=True)))
    items, marker = split_marker(rows, page)
    return count(db, stmt), items, marker
