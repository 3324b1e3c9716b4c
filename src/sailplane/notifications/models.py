"""Notification tables: channels (where to), rules (which events, which scope, which channels) and deliveries
(the outbox: one row per event × rule × channel, written with the state change, sent by `sender`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sailplane.kit.db import Base, Timestamps, id_column


class NotificationChannel(Timestamps, Base):
    """`config`: the type's public settings; `secret`: kit.crypto.Encryptor ciphertext of the type's secrets (a
    JSON object: signing secret, Slack webhook URL, PagerDuty routing key, Rootly token), never answered.
    Owned by a member (`member_id`), a team (`team_id`) or the organization (neither)."""

    __tablename__ = "notification_channels"
    __table_args__ = (Index("ix_notification_channels_org_id", "organization_id", "id"),)

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(255))
    team_id: Mapped[str | None] = mapped_column(String(20), default=None)
    member_id: Mapped[str | None] = mapped_column(String(20), default=None)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(20), default="active")
    status_message: Mapped[str | None] = mapped_column(String(2000), default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)


class NotificationRule(Timestamps, Base):
    """`event_types`: concrete keys only (shortcuts were expanded at creation). `scope_type`: organization,
    team (`team_id`), resource (`resource_id`, e.g. a job) or own_resources (`member_id`'s)."""

    __tablename__ = "notification_rules"
    __table_args__ = (Index("ix_notification_rules_org_id", "organization_id", "id"),)

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    team_id: Mapped[str | None] = mapped_column(String(20), default=None)
    member_id: Mapped[str | None] = mapped_column(String(20), default=None)
    resource_type: Mapped[str] = mapped_column(String(40))
    scope_type: Mapped[str] = mapped_column(String(20))
    resource_id: Mapped[str | None] = mapped_column(String(20), default=None)
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class NotificationDelivery(Timestamps, Base):
    """One message to one channel. `event_id` names the event (e.g. a run's attempt and end): with the rule and
    the channel it is unique, so an event recorded twice is delivered once. The sender claims a row by a
    compare-and-set on its lease; `next_attempt_at` is the retry backoff."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "rule_id", "channel_id"),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_org_id", "organization_id", "id"),
    )

    id: Mapped[str] = id_column()
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(String(20))
    rule_id: Mapped[str | None] = mapped_column(String(20), default=None)
    event_id: Mapped[str] = mapped_column(String(120))
    event_type: Mapped[str] = mapped_column(String(80))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(20), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    response_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(2000), default=None)
    first_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
