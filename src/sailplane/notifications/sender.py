"""The delivery sender: the one owner of a delivery's status and lease after the outbox wrote it.

    pending → delivering → delivered | pending (retry, `next_attempt_at` = backoff) | failed (given up) | skipped

Every server runs one (`NotificationRuntime`, a `PeriodicService` on a loop thread of its own; off with
SAILPLANE_NOTIFICATIONS_ENABLED=0). A tick claims due deliveries (`pending`, or `delivering` whose lease expired:
its sender died) each by a compare-and-set on the lease it saw, so two servers never send one attempt twice; the
lease covers one attempt (bounded by the send timeout, far below the lease), so it is not renewed. The attempt's
end is recorded under `lease_owner = us`. A retry waits `notifications_retry_seconds` × 2^(attempts-1) (capped
at an hour) or the receiver's `Retry-After` when longer; past `notifications_give_up_seconds` after the delivery
was written it is failed with the last error kept. A server killed mid-attempt leaves its lease to expire (its
next life takes its own at once) and the delivery is sent again: receivers drop duplicates by `Idempotency-Key`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import and_, or_, select, update

from sailplane.config import Settings
from sailplane.kit.background import PeriodicService
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database
from sailplane.kit.ids import new_id
from sailplane.kit.loop_thread import LoopThread
from sailplane.kit.state_table import StateTable
from sailplane.notifications.mailer.service import Mailer
from sailplane.notifications.models import NotificationChannel, NotificationDelivery
from sailplane.notifications.sending import Outcome, Target, http_client, send, target

log = logging.getLogger(__name__)

PENDING: Final = "pending"
DELIVERING: Final = "delivering"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"
SKIPPED: Final = "skipped"
STATES = StateTable("notification_deliveries", (PENDING, DELIVERING, DELIVERED, FAILED, SKIPPED), {
    DELIVERING: frozenset({PENDING, DELIVERING}),
    PENDING: frozenset({DELIVERING}),
    DELIVERED: frozenset({DELIVERING}),
    FAILED: frozenset({DELIVERING}),
    SKIPPED: frozenset({DELIVERING}),
})
MAX_BACKOFF_SECONDS: Final = 3600.0


def node_tag(node: str) -> str:
    """The lease owner's prefix for a node (its data directory): a restart recognises its own earlier leases."""
    return hashlib.sha256(f"notifications:{node}".encode()).hexdigest()[:16]


class NotificationSender:
    """Claims up to `batch` due deliveries per tick and sends them concurrently (each attempt in a thread)."""

    def __init__(self, db: Database, settings: Settings, mailer: Mailer, *, batch: int = 32) -> None:
        self.db = db
        self.settings = settings
        self.mailer = mailer
        self.encryptor = Encryptor(settings.secret_key)
        self.tag = node_tag(str(settings.data_dir))
        self.owner = f"{self.tag}:{new_id()}"
        self.batch = batch
        self._first = True
        self.client = http_client(settings)  # shared by the attempts (kept-alive connections)
        self.ticks = PeriodicService("notification-sender", self._tick, settings.notifications_interval_seconds,
                                     logger=log, tick_at_start=True, backoff_limit=30.0)

    async def start(self) -> None:
        self._first = True
        self.ticks.start()

    def wake(self) -> None:
        self.ticks.wake()

    async def stop(self) -> None:
        await self.ticks.stop()
        self.client.close()

    async def _tick(self) -> None:
        while True:
            on_start, self._first = self._first, False
            claimed = await asyncio.to_thread(self._claim, on_start)
            if not claimed:
                return
            await asyncio.gather(*(self._deliver(delivery_id) for delivery_id in claimed))
            if len(claimed) < self.batch:
                return

    def _claim(self, on_start: bool) -> list[str]:
        now = utcnow()
        D = NotificationDelivery  # noqa: N806
        free = or_(D.lease_owner.is_(None), D.lease_expires_at.is_(None), D.lease_expires_at < now)
        if on_start:  # our node's previous life (killed): its leases are ours at once
            free = or_(free, and_(D.lease_owner.like(f"{self.tag}:%"), D.lease_owner != self.owner))
        due = or_(D.next_attempt_at.is_(None), D.next_attempt_at <= now)
        claimed: list[str] = []
        with self.db.session() as db:
            rows = db.execute(select(D.id, D.lease_owner, D.lease_expires_at)
                              .where(D.status.in_(STATES.sources(DELIVERING)), due, free)
                              .order_by(D.next_attempt_at, D.id).limit(self.batch)).all()
            for row in rows:
                same_owner = D.lease_owner.is_(None) if row.lease_owner is None else D.lease_owner == row.lease_owner
                same_expiry = D.lease_expires_at.is_(None) if row.lease_expires_at is None \
                    else D.lease_expires_at == row.lease_expires_at
                result = db.execute(update(D).where(D.id == row.id, D.status.in_(STATES.sources(DELIVERING)),
                                                    same_owner, same_expiry)
                                    .values(status=DELIVERING, lease_owner=self.owner, updated_at=now,
                                            lease_expires_at=now + timedelta(
                                                seconds=self.settings.notifications_lease_seconds)),
                                    execution_options={"synchronize_session": False})
                if result.rowcount:  # type: ignore[attr-defined]
                    claimed.append(row.id)
            db.commit()
        return claimed

    def _load(self, delivery_id: str) -> tuple[Target | None, dict[str, Any]] | None:
        with self.db.session() as db:
            row = db.scalar(select(NotificationDelivery).where(NotificationDelivery.id == delivery_id,
                                                               NotificationDelivery.lease_owner == self.owner))
            if row is None:
                return None
            channel = db.scalar(select(NotificationChannel).where(NotificationChannel.id == row.channel_id))
            body = {**row.payload, "eventId": row.event_id}
            return (target(db, channel, self.encryptor) if channel is not None else None), body

    async def _deliver(self, delivery_id: str) -> None:
        try:
            loaded = await asyncio.to_thread(self._load, delivery_id)
            if loaded is None:
                return
            to, body = loaded
            if to is None:
                await asyncio.to_thread(self._record, delivery_id, None)
                return
            outcome = await asyncio.to_thread(send, to, delivery_id, body, self.settings, self.mailer, self.client)
            await asyncio.to_thread(self._record, delivery_id, outcome)
        except Exception:
            log.exception("delivery %s: the attempt failed unexpectedly; its lease lapses and it is tried again",
                          delivery_id)

    def _record(self, delivery_id: str, outcome: Outcome | None) -> None:
        """The attempt's end, if we still hold the delivery (`outcome` None: its channel was deleted)."""
        now = utcnow()
        D = NotificationDelivery  # noqa: N806
        with self.db.session() as db:
            row = db.scalar(select(D).where(D.id == delivery_id, D.lease_owner == self.owner,
                                            D.status == DELIVERING))
            if row is None:
                log.warning("delivery %s: lost its lease during the attempt; its end is not recorded", delivery_id)
                return
            values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
            if outcome is None:
                values.update(status=SKIPPED, last_error="The channel was deleted.", next_attempt_at=None)
            else:
                attempts = row.attempts + 1
                values.update(attempts=attempts, last_attempt_at=now, response_code=outcome.response_code,
                              duration_ms=outcome.duration_ms, first_attempt_at=row.first_attempt_at or now)
                if outcome.ok:
                    values.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
                else:
                    delay = min(self.settings.notifications_retry_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
                    delay = max(delay, min(outcome.retry_after or 0.0, MAX_BACKOFF_SECONDS))
                    retry_at = now + timedelta(seconds=delay)
                    give_up_at = row.created_at + timedelta(seconds=self.settings.notifications_give_up_seconds)
                    if outcome.retryable and retry_at <= give_up_at:
                        values.update(status=PENDING, next_attempt_at=retry_at, last_error=outcome.error)
                    else:
                        values.update(status=FAILED, next_attempt_at=None, last_error=(
                            (outcome.error or "failed") if not outcome.retryable
                            else f"Given up after {attempts} attempts: {outcome.error}")[:2000])
            db.execute(update(D).where(D.id == delivery_id, D.lease_owner == self.owner,
                                       D.status.in_(STATES.sources(values["status"]))).values(**values),
                       execution_options={"synchronize_session": False})
            db.commit()


class NotificationRuntime:
    """The sender on an event loop of its own, started and stopped by the app factory."""

    def __init__(self, db: Database, settings: Settings, mailer: Mailer) -> None:
        self.sender = NotificationSender(db, settings, mailer)
        self._thread = LoopThread("notifications")
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._thread.run(self.sender.start(), timeout=30)
        self._started = True

    def notify(self) -> None:
        """Deliveries were written: look now (thread-safe)."""
        if self._started:
            self._thread.call_soon(self.sender.wake)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self._thread.run(self.sender.stop(), timeout=60)
        except Exception:
            log.exception("stopping the notification sender failed")
        finally:
            self._thread.stop()
