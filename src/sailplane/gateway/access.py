"""Re-validating the holder of each session token, without making calls wait on the database.

A valid signature says who a token was issued to, not whether they may still use it: their login may
have been revoked, they may have left the team. An injected `HolderCheck` answers that (from the
database; it is blocking, so it runs in a worker thread, never on the gateway's loop). Answers are
kept per holder — (session, subject, the login or API key the token was issued through) — for `ttl`
seconds, so tokens of one holder share one answer:

- a call whose holder has an answer younger than `ttl` is admitted (or refused) from memory;
- otherwise it waits for one check (the first call of a holder, or one after a quiet spell);
- a background sweep re-checks, every ttl/2, the holders used since their last check or with calls
  still running, so a busy holder's answer never gets old and its calls never wait. When a re-check
  refuses a holder with calls in flight, `on_denied` lets the gateway cut those calls off.

So an admitted call rests on an answer read at most `ttl` seconds earlier: access removed at time T
is refused from T + ttl on (answers are stamped with the time their check started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sailplane.gateway.denied import GatewayDenied

log = logging.getLogger(__name__)

Claims = dict[str, Any]
HolderCheck = Callable[[list[Claims]], list[GatewayDenied | None]]
"""Blocking: for each token's claims, None when its holder may still use its session, else the refusal."""
HolderKey = tuple[Any, Any, Any]
_MAX_HOLDERS = 100_000


@dataclass(eq=False, slots=True)
class Holder:
    """One holder's latest answer. Compared by identity: calls keep a reference to theirs."""

    claims: Claims
    checked_at: float = -math.inf  # time.monotonic() when the check behind `denial` started
    denial: GatewayDenied | None = None
    used: bool = True  # a call asked since the last check
    in_flight: int = 0
    pending: asyncio.Task[None] | None = field(default=None, repr=False)


def holder_key(claims: Claims) -> HolderKey:
    return claims["sid"], claims["sub"], claims.get("via")


class AccessCache:
    """Holders' answers for the gateway; all methods run on the gateway's event loop."""

    def __init__(self, check: HolderCheck, ttl: float, on_denied: Callable[[list[Holder]], None]):
        if ttl <= 0:
            raise ValueError("the access cache needs a positive ttl")
        self._check = check
        self.ttl = ttl
        self._sweep_every = ttl / 2
        self._on_denied = on_denied
        self._holders: dict[HolderKey, Holder] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="gateway-access-sweep")

    async def stop(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    # -- per call ----------------------------------------------------------------------------------

    def holder(self, claims: Claims) -> Holder:
        key = holder_key(claims)
        found = self._holders.get(key)
        if found is None:
            if len(self._holders) >= _MAX_HOLDERS:
                self._drop_idle(time.monotonic())
            found = self._holders[key] = Holder(claims)
        found.used = True
        return found

    def admit_now(self, holder: Holder) -> bool:
        """True: admitted from memory; False: no recent answer, call `admit`. Raises the refusal."""
        if time.monotonic() - holder.checked_at >= self.ttl:
            return False
        if holder.denial is not None:
            raise holder.denial
        return True

    async def admit(self, holder: Holder) -> None:
        """Wait for a check unless a recent answer exists; raises the refusal (UNAVAILABLE if the check fails)."""
        if self.admit_now(holder):
            return
        task = holder.pending or self._start([holder])
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise GatewayDenied.unavailable("access to this session cannot be checked right now; retry") from exc
        # The answer this call waited for decides it, however long the check took.
        if holder.denial is not None:
            raise holder.denial

    # -- checking ----------------------------------------------------------------------------------

    def _start(self, holders: list[Holder]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._refresh(holders, time.monotonic()))
        task.add_done_callback(_retrieve)
        for h in holders:
            h.pending = task
            h.used = False
        return task

    async def _refresh(self, holders: list[Holder], started: float) -> None:
        try:
            answers = await asyncio.to_thread(self._check, [h.claims for h in holders])
        finally:
            for h in holders:
                h.pending = None
        newly_denied = []
        for h, denial in zip(holders, answers, strict=True):
            if denial is not None and h.denial is None and h.in_flight:
                newly_denied.append(h)
            h.checked_at, h.denial = started, denial
        if newly_denied:
            self._on_denied(newly_denied)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("re-checking session token holders failed; their calls will wait for a check",
                            exc_info=True)

    async def sweep(self) -> None:
        """Re-check the holders in use (asked since their last check, or with calls running); forget idle ones."""
        now = time.monotonic()
        due = [h for h in self._holders.values()
               if h.pending is None and (h.used or h.in_flight) and now - h.checked_at >= self._sweep_every / 2]
        self._drop_idle(now)
        if due:
            await self._start(due)

    def _drop_idle(self, now: float) -> None:
        idle = [k for k, h in self._holders.items()
                if not h.used and not h.in_flight and h.pending is None and now - h.checked_at >= self.ttl]
        for key in idle:
            del self._holders[key]


def _retrieve(task: asyncio.Task[None]) -> None:
    """A check nobody awaits any more (its call went away) must not log 'exception never retrieved'."""
    if not task.cancelled():
        task.exception()
