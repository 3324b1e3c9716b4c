"""The session lifecycle controller: starts and stops compute instances and moves sessions along
pending → active → idle → closed (or failed), and tells the gateway where each session lives.

It runs on the gateway's event loop. The gateway asks it two things on every call, and both are
answered from memory: `resolve` (where is this session's Sail server; waits while it starts) and
`on_activity` (a call happened). Activity is written to the database in batches, once per tick,
never once per call. Everything else (timeouts, health, cleanup) is decided each tick from the
database, which stays the source of truth; memory is only the gateway's routing table.

Each control-plane node owns the instances its compute backend started (`ComputeInstance.node`):
on start it adopts the ones still running, marks the ones whose process is gone (failing their
sessions), and stops processes that no record owns. While it runs, it also stops the Sail servers
that other nodes of this machine left when they went down (`compute.nodes`), except those of their
sessions still open: a session closed while its node is down does not keep its Sail server, nor does
a node that was killed keep its warm pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, exists, or_, select, update
from sqlalchemy.orm import Session

from sailplane.compute.backend import ComputeBackend, InstanceHandle, InstanceSpec
from sailplane.compute.nodes import down_nodes_instances, stop_down_node_instances
from sailplane.compute.registry import NodeBackends, UnknownCluster
from sailplane.gateway.spark_connect import Claims, GatewayDenied
from sailplane.kit.background import PeriodicService
from sailplane.kit.clock import utcnow
from sailplane.kit.db import Database
from sailplane.tenancy.audit import service as audit
from sailplane.workloads import instance_states, session_states
from sailplane.workloads.instance_states import HELD_STATES, INSTANCE_FAILED, PROVISIONING, RUNNING, STOPPED, STOPPING
from sailplane.workloads.models import (
    READINESS_MESSAGES,
    SESSION_READY,
    SESSION_STARTING,
    ComputeInstance,
    InteractiveSession,
)
from sailplane.workloads.session_events import IDLE_TIMEOUT, MAX_DURATION
from sailplane.workloads.session_states import ACTIVE, CLOSED, FAILED, IDLE, OPEN_STATES, PENDING

log = logging.getLogger(__name__)

# Why a session ended (`terminationReason`).
CLOSED_BY_USER = "closed_by_user"
START_FAILED = "instance_start_failed"
INSTANCE_DIED = "instance_failed"
INSTANCE_LOST = "instance_lost"
# (IDLE_TIMEOUT and MAX_DURATION: `session_events`, which notifies about them)

STARTING, READY, BROKEN, RELEASING = "starting", "ready", "failed", "stopping"
STOP_TICK_SECONDS = 10.0  # a stop waits this long for the tick in progress, then cancels it
DOWN_NODE_SWEEP_SECONDS = 2.0  # at most this often (and at least once a tick) for the servers of nodes that are down
_ENDED_MEMORY = 10_000
_MESSAGE_LIMIT = 2000


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _clip(message: str) -> str:
    return message if len(message) <= _MESSAGE_LIMIT else message[: _MESSAGE_LIMIT - 1] + "…"


@dataclass
class LiveSession:
    id: str
    instance_id: str
    status: str
    last_call: float | None = None
    idle_since: float | None = None
    in_flight: int = 0


@dataclass
class LiveInstance:
    id: str
    cluster_id: str  # whose backend runs it
    state: str
    handle: InstanceHandle | None = None
    ready_at: float | None = None


@dataclass(frozen=True)
class LiveView:
    """The freshest state of an open session (memory is ahead of the database by at most one tick)."""

    status: str
    last_activity_at: datetime | None
    idle_since: datetime | None


def handle_of(row: ComputeInstance) -> InstanceHandle | None:
    if row.ref is None or row.port is None or row.host is None or row.started_at is None:
        return None
    return InstanceHandle(instance_id=row.id, ref=row.ref, host=row.host, port=row.port, started_at=row.started_at)


class SessionController:
    def __init__(self, db: Database, backends: NodeBackends, *, node: str, interval: float,
                 start_timeout: float, node_dir: Path | None = None, deployment: str | None = None) -> None:
        self.db = db
        self.backends = backends  # each instance is run by the backend of its cluster
        self.node = node
        # This node's data directory, when its backend runs Sail servers on this machine: then it also
        # stops those of other nodes of this machine and deployment (database) that are down.
        self.node_dir = node_dir
        self.deployment = deployment
        self._next_sweep = 0.0
        self.interval = interval
        self.start_timeout = start_timeout
        self.forget_upstream: Callable[[str], Awaitable[None]] | None = None
        self._lock = threading.Lock()
        self._sessions: dict[str, LiveSession] = {}
        self._instances: dict[str, LiveInstance] = {}
        self._ended: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._dirty: set[str] = set()
        self._opened: set[str] = set()  # sessions opened on an instance not known ready yet (statusMessage)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Ticks wait for a nudge or the interval; a stop lets the tick in progress finish.
        self._ticks = PeriodicService("session-controller", self.tick, interval, logger=log,
                                      failure="session controller tick failed", stop_timeout=STOP_TICK_SECONDS)
        self._ready_events: dict[str, asyncio.Event] = {}
        self._starts: set[asyncio.Task[None]] = set()
        self._stops: set[asyncio.Task[None]] = set()
        self._running = False

    # -- called from request threads (thread-safe) ----------------------------------------------

    @property
    def available(self) -> bool:
        return self._running and self._loop is not None and not self._loop.is_closed()

    def instance_usable(self, instance_id: str) -> bool:
        """Whether a session can still be attached to this instance (it is starting or serving)."""
        with self._lock:
            inst = self._instances.get(instance_id)
            return inst is not None and inst.state in (STARTING, READY)

    def session_opened(self, session_id: str, instance_id: str, spec: InstanceSpec | None, cluster_id: str) -> None:
        """A session was committed; `spec` is given when its instance (of `cluster_id`) is new and must be
        started."""
        with self._lock:
            self._sessions[session_id] = LiveSession(session_id, instance_id, PENDING)
            self._opened.add(session_id)
            if spec is not None:
                self._instances[instance_id] = LiveInstance(instance_id, cluster_id, STARTING)
        if spec is not None:
            self._call_soon(self._spawn_start, instance_id, cluster_id, spec)

    def session_ended(self, session_id: str, status: str, message: str | None = None) -> None:
        """A session was closed through the API: refuse its calls now, clean up on the next tick."""
        self._forget_sessions([(session_id, status, message)])
        self._call_soon(self._nudge)

    def sessions_closed(self, ended: list[tuple[str, str]]) -> None:
        """Sessions closed in a committed transaction of this process, with why (their owner lost access):
        refuse their calls now, release their instances on the next tick."""
        self._forget_sessions([(sid, CLOSED, message) for sid, message in ended])
        self._call_soon(self._nudge)

    def live_view(self, session_id: str) -> LiveView | None:
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                return None
            return LiveView(s.status, _dt(s.last_call), _dt(s.idle_since))

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(fn, *args)

    def _forget_sessions(self, ended: list[tuple[str, str, str | None]]) -> None:
        with self._lock:
            for sid, status, message in ended:
                self._sessions.pop(sid, None)
                self._dirty.discard(sid)
                self._ended[sid] = (status, message)
                self._ended.move_to_end(sid)
            while len(self._ended) > _ENDED_MEMORY:
                self._ended.popitem(last=False)

    # -- the gateway's hooks (on the loop, per call, memory only) -------------------------------

    def resolve_now(self, claims: Claims, method: str) -> str | None:
        """Where a session's calls go, from memory: its instance's address, None while the instance
        starts, GatewayDenied when the session cannot be reached."""
        sid = claims["sid"]
        with self._lock:
            session = self._sessions.get(sid)
            ended = self._ended.get(sid) if session is None else None
            inst = self._instances.get(session.instance_id) if session is not None else None
        if session is None:
            if ended is not None:
                status, message = ended
                what = "has failed" if status == FAILED else "was closed"
                detail = f" ({message})" if message else ""
                raise GatewayDenied.unauthenticated(f"session {sid} {what}{detail}; create a new session")
            raise GatewayDenied.unauthenticated(f"session {sid} is not open (closed or unknown)")
        if inst is None or inst.state in (BROKEN, RELEASING):
            raise GatewayDenied.unavailable(f"session {sid} has no running compute instance")
        if inst.state == READY and inst.handle is not None:
            return inst.handle.address
        return None

    async def resolve(self, claims: Claims, method: str) -> str:
        """`resolve_now`, waiting (up to the start timeout) for an instance that is still starting."""
        sid = claims["sid"]
        deadline = time.monotonic() + self.start_timeout
        while True:
            address = self.resolve_now(claims, method)
            if address is not None:
                return address
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GatewayDenied.unavailable(f"session {sid} is still starting; retry shortly")
            with self._lock:
                session = self._sessions.get(sid)
            if session is None:
                continue  # ended meanwhile: resolve_now says how
            event = self._ready_events.setdefault(session.instance_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def on_activity(self, session_id: str) -> None:
        """A call started: the session is active, and stays so until its calls end."""
        now = time.time()
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                return
            s.in_flight += 1
            s.last_call = now
            self._dirty.add(session_id)
            changed = s.status != ACTIVE
            if changed:
                s.status, s.idle_since = ACTIVE, None
        if changed:
            self._nudge()  # persist pending/idle → active now rather than at the next tick

    def on_call_end(self, session_id: str) -> None:
        """A call ended: the idle clock starts from its end (a one-hour query is not idleness)."""
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                return
            s.in_flight = max(0, s.in_flight - 1)
            s.last_call = time.time()
            self._dirty.add(session_id)

    # -- lifecycle (on the loop) ----------------------------------------------------------------

    async def start(self) -> None:
        """Adopt or clean up this node's instances, stop orphans, then run the loop."""
        self._loop = asyncio.get_running_loop()
        await self._reconcile()
        self._running = True
        self._ticks.start()

    async def stop(self) -> None:
        """Stop deciding things; instances keep running so the next start can adopt them."""
        self._running = False
        await self._ticks.stop()
        for task in list(self._starts):
            task.cancel()  # the backend stops a half-started process; the next start marks it lost
        pending = [*self._starts, *self._stops]
        if pending:
            await asyncio.wait(pending, timeout=30)
        with contextlib.suppress(Exception):
            await self._flush_activity()

    async def tick(self) -> None:
        await self._flush_activity()
        await self._say_ready()
        await self._check_health()
        await self._apply_timeouts()
        await self._release_unused()
        await self._sweep_down_nodes()

    def _nudge(self) -> None:
        """Tick now rather than at the end of the interval (on the loop; nothing before start)."""
        if self._loop is not None:
            self._ticks.wake()

    def _spawn(self, tasks: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _spawn_start(self, instance_id: str, cluster_id: str, spec: InstanceSpec) -> None:
        self._spawn(self._starts, self._start_instance(instance_id, cluster_id, spec))

    def _ready(self, instance_id: str) -> None:
        event = self._ready_events.pop(instance_id, None)
        if event is not None:
            event.set()

    # -- starting, watching and stopping instances ----------------------------------------------

    async def _start_instance(self, instance_id: str, cluster_id: str, spec: InstanceSpec) -> None:
        try:
            backend = self.backends.get(cluster_id)
            handle = await backend.start(spec, timeout=self.start_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("compute instance %s failed to start: %s", instance_id, exc)
            await self._fail_instance(instance_id, f"The Sail server could not start. {exc}", START_FAILED)
            return
        recorded = await asyncio.to_thread(self._db_instance_running, instance_id, handle)
        if not recorded:  # the record vanished (its team was deleted): nobody may use this process
            await backend.stop(handle)
            with self._lock:
                self._instances.pop(instance_id, None)
            self._ready(instance_id)
            return
        with self._lock:
            self._instances[instance_id] = LiveInstance(instance_id, cluster_id, READY, handle, time.time())
        self._ready(instance_id)
        log.info("compute instance %s ready at %s (%s)", instance_id, handle.address, handle.ref)

    async def _fail_instance(self, instance_id: str, message: str, reason: str) -> None:
        message = _clip(message)
        failed = await asyncio.to_thread(self._db_instance_failed, instance_id, message, reason)
        self._forget_sessions([(sid, FAILED, message) for sid in failed])
        with self._lock:
            inst = self._instances.pop(instance_id, None)
        self._ready(instance_id)
        if inst is not None and inst.handle is not None:
            with contextlib.suppress(Exception):
                await self.backends.get(inst.cluster_id).stop(inst.handle, grace=2.0)  # and anything it left
            if self.forget_upstream is not None:
                await self.forget_upstream(inst.handle.address)

    async def _check_health(self) -> None:
        with self._lock:
            ready = [i for i in self._instances.values() if i.state == READY and i.handle is not None]
        for inst in ready:
            assert inst.handle is not None
            if not await self.backends.get(inst.cluster_id).find(inst.handle):
                log.warning("compute instance %s (%s) is gone", inst.id, inst.handle.ref)
                await self._fail_instance(inst.id, "The Sail server of this session stopped unexpectedly.",
                                          INSTANCE_DIED)

    async def _release_unused(self) -> None:
        with self._lock:
            known = [iid for iid, i in self._instances.items() if i.state == READY]
            in_memory = {sid: s.instance_id for sid, s in self._sessions.items()}
        claimed, vanished, ended = await asyncio.to_thread(self._db_claim_unused, known, in_memory)
        # Sessions of the claimed instances still in memory were ended elsewhere (another node) since the
        # last look: refuse them as ended, with the reason, rather than as unavailable while Sail stops.
        self._forget_sessions(ended)
        for row_id in vanished:  # its record was deleted (e.g. with its team): nobody may use it any more
            with self._lock:
                inst = self._instances.get(row_id)
                gone = [sid for sid, s in self._sessions.items() if s.instance_id == row_id]
                if inst is not None:
                    inst.state = RELEASING
            self._forget_sessions([(sid, CLOSED, "its records were deleted") for sid in gone])
            if inst is not None:
                self._spawn(self._stops, self._stop_instance(row_id, inst.cluster_id, inst.handle, record=False))
        for row_id, cluster_id, handle in claimed:
            with self._lock:
                inst = self._instances.get(row_id)
                if inst is None:
                    inst = self._instances[row_id] = LiveInstance(row_id, cluster_id, RELEASING, handle)
                inst.state = RELEASING
                handle = inst.handle or handle
            self._spawn(self._stops, self._stop_instance(row_id, cluster_id, handle))

    async def _stop_instance(self, instance_id: str, cluster_id: str, handle: InstanceHandle | None, *,
                             record: bool = True) -> None:
        try:
            if handle is not None:
                await self.backends.get(cluster_id).stop(handle)
        except Exception:
            log.exception("stopping compute instance %s failed", instance_id)
        if record:
            await asyncio.to_thread(self._db_instance_stopped, instance_id)
        if handle is not None and self.forget_upstream is not None:
            await self.forget_upstream(handle.address)
        with self._lock:
            self._instances.pop(instance_id, None)
        log.info("compute instance %s stopped", instance_id)

    async def _sweep_down_nodes(self) -> None:
        """Stop the Sail servers that nodes of this machine which are down no longer need: all but those of
        their open sessions (adopted when the node is back). Their records say so: `stopped`."""
        if self.node_dir is None or self.deployment is None or time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + max(self.interval, DOWN_NODE_SWEEP_SECONDS)
        found = await asyncio.to_thread(down_nodes_instances, self.node_dir, self.deployment)
        if not found:
            return
        keep, claimed = await asyncio.to_thread(self._db_claim_down, sorted(set().union(*found.values())))
        for data_dir, instance_ids in found.items():
            stopped = await stop_down_node_instances(data_dir, instance_ids & keep)
            if stopped:
                log.warning("stopped %d Sail server(s) left by the node of %s, which is down: %s", len(stopped),
                            data_dir, ", ".join(sorted(stopped)))
        if claimed:
            await asyncio.to_thread(self._db_instances_stopped, claimed)

    # -- activity and timeouts ------------------------------------------------------------------

    async def _flush_activity(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            batch = [(sid, s.instance_id, s.last_call) for sid in dirty
                     if (s := self._sessions.get(sid)) is not None and s.last_call is not None]
        if batch:
            await asyncio.to_thread(self._db_flush, batch)

    async def _say_ready(self) -> None:
        """Pending sessions opened while their instance was becoming ready (their transaction saw it still
        starting, the instance's own update came before their commit): say that it is ready now."""
        with self._lock:
            if not self._opened:
                return
            ready = []
            for sid in list(self._opened):
                session = self._sessions.get(sid)
                inst = self._instances.get(session.instance_id) if session is not None else None
                if session is not None and inst is not None and inst.state == STARTING:
                    continue  # its instance's start says so when it is ready
                self._opened.discard(sid)
                if session is not None and session.status == PENDING and inst is not None and inst.state == READY:
                    ready.append(sid)
        if ready:
            await asyncio.to_thread(self._db_say_ready, ready)

    async def _apply_timeouts(self) -> None:
        with self._lock:
            started = time.time()
            # A session with a call in flight counts as used right now, however long the call runs.
            calls = {sid: (s.status, started if s.in_flight else s.last_call) for sid, s in self._sessions.items()}
            ready = {iid: i.ready_at for iid, i in self._instances.items() if i.state == READY}
        idled, closed, ended_elsewhere = await asyncio.to_thread(self._db_timeouts, calls, ready)
        now = time.time()
        with self._lock:
            for sid in idled:
                s = self._sessions.get(sid)
                if s is not None and not s.in_flight and s.last_call == calls.get(sid, (None, None))[1]:
                    s.status, s.idle_since = IDLE, now
        self._forget_sessions([(sid, CLOSED, reason) for sid, reason in closed] + ended_elsewhere)
        if closed or ended_elsewhere:
            self._nudge()  # release their instances without waiting a whole interval

    # -- start-up reconciliation ----------------------------------------------------------------

    async def _reconcile(self) -> None:
        rows = await asyncio.to_thread(self._db_node_instances)
        adopted: list[tuple[str, str, InstanceHandle, float | None]] = []
        lost: list[tuple[str, str]] = []
        for row_id, cluster_id, status, handle in rows:
            # A `stopping` instance is not adopted: stop_orphans below finishes stopping it.
            if handle is not None and status == RUNNING and await self._exists(cluster_id, handle):
                adopted.append((row_id, cluster_id, handle, _epoch(handle.started_at)))
            else:
                lost.append((row_id, status))
        if lost:
            failed = await asyncio.to_thread(self._db_mark_lost, lost)
            self._forget_sessions([(sid, FAILED, message) for sid, message in failed])
        known = [row_id for row_id, _, _, _ in adopted]
        stopped = [iid for backend in self.backends.all() for iid in await backend.stop_orphans(known)]
        if stopped:
            log.warning("stopped %d Sail process(es) no record owns: %s", len(stopped), ", ".join(stopped))
        sessions = await asyncio.to_thread(self._db_open_sessions, known)
        with self._lock:
            for row_id, cluster_id, handle, ready_at in adopted:
                self._instances[row_id] = LiveInstance(row_id, cluster_id, READY, handle, ready_at)
            for sid, instance_id, status, last_activity, idle_since in sessions:
                self._sessions[sid] = LiveSession(sid, instance_id, status, _epoch(last_activity), _epoch(idle_since))
        if adopted or lost:
            log.info("adopted %d running compute instance(s); %d were gone", len(adopted), len(lost))

    async def _exists(self, cluster_id: str, handle: InstanceHandle) -> bool:
        """Whether the instance is still there; never for a cluster no backend of this node serves."""
        try:
            backend: ComputeBackend = self.backends.get(cluster_id)
        except UnknownCluster:
            return False
        return await backend.find(handle)

    # -- database work (blocking; runs in a worker thread) --------------------------------------

    def _session(self) -> Session:
        return self.db.session()

    def _audit_end(self, db: Session, org_id: str, sid: str, action: str, details: dict[str, Any]) -> None:
        audit.record(db, None, None, action, "session", sid, organization_id=org_id, actor_type="system",
                     details=details)

    def _fail_open_sessions(self, db: Session, instance_ids: list[str], reason: str, message: str,
                            now: datetime) -> list[str]:
        rows = db.execute(select(InteractiveSession.id, InteractiveSession.organization_id).where(
            InteractiveSession.compute_instance_id.in_(instance_ids), InteractiveSession.status.in_(OPEN_STATES))).all()
        failed = []
        for sid, org_id in rows:
            if session_states.transition(db, sid, FAILED, source=OPEN_STATES, now=now,
                                         values={"termination_reason": reason, "status_message": message}):
                failed.append(sid)
                self._audit_end(db, org_id, sid, "session.fail", {"reason": reason})
        return failed

    def _db_instance_running(self, instance_id: str, handle: InstanceHandle) -> bool:
        with self._session() as db:
            now = utcnow()
            started = instance_states.transition(db, instance_id, RUNNING, source=(PROVISIONING,), now=now, values={
                "ref": handle.ref, "host": handle.host, "port": handle.port, "started_at": handle.started_at})
            if started:
                # A user polling a pending session can tell that it is ready (it stays pending until its first call).
                db.execute(update(InteractiveSession).where(
                    InteractiveSession.compute_instance_id == instance_id, InteractiveSession.status == PENDING,
                    or_(InteractiveSession.status_message.is_(None),
                        InteractiveSession.status_message == SESSION_STARTING)).values(
                    status_message=SESSION_READY, updated_at=now))
            db.commit()
            return bool(started)

    def _db_say_ready(self, session_ids: list[str]) -> None:
        with self._session() as db:
            db.execute(update(InteractiveSession).where(
                InteractiveSession.id.in_(session_ids), InteractiveSession.status == PENDING,
                InteractiveSession.status_message == SESSION_STARTING).values(
                status_message=SESSION_READY, updated_at=utcnow()))
            db.commit()

    def _db_instance_failed(self, instance_id: str, message: str, reason: str) -> list[str]:
        with self._session() as db:
            now = utcnow()
            instance_states.transition(db, instance_id, INSTANCE_FAILED, now=now, values={"status_message": message})
            failed = self._fail_open_sessions(db, [instance_id], reason, message, now)
            db.commit()
            return failed

    def _db_instance_stopped(self, instance_id: str) -> None:
        with self._session() as db:
            instance_states.transition(db, instance_id, STOPPED)
            db.commit()

    def _db_claim_unused(self, known: list[str], in_memory: dict[str, str]) -> tuple[
            list[tuple[str, str, InstanceHandle | None]], list[str], list[tuple[str, str, str | None]]]:
        """Running instances of this node without open sessions, switched to `stopping` under a row
        lock so that a session being attached concurrently (which locks the row too) cannot race it;
        which of the `known` running instances have no record any more; and how the sessions `in_memory`
        (session → instance) of the claimed instances ended."""
        open_session = exists().where(InteractiveSession.compute_instance_id == ComputeInstance.id,
                                      InteractiveSession.status.in_(OPEN_STATES))
        with self._session() as db:
            existing = set(db.scalars(select(ComputeInstance.id).where(ComputeInstance.id.in_(known)))) if known \
                else set()
            vanished = [iid for iid in known if iid not in existing]
            candidates = list(db.scalars(select(ComputeInstance.id).where(
                ComputeInstance.node == self.node, ComputeInstance.status == RUNNING, ~open_session)))
            claimed = []
            for row_id in candidates:
                row = db.scalar(select(ComputeInstance).where(ComputeInstance.id == row_id).with_for_update())
                if row is None or row.status != RUNNING:
                    continue
                if db.scalar(select(InteractiveSession.id).where(
                        InteractiveSession.compute_instance_id == row_id,
                        InteractiveSession.status.in_(OPEN_STATES)).limit(1)) is not None:
                    continue
                instance_states.transition(db, row_id, STOPPING, source=(RUNNING,))
                claimed.append((row_id, row.cluster_id, handle_of(row)))
            claimed_ids = {row_id for row_id, _, _ in claimed}
            ended_ids = [sid for sid, iid in in_memory.items() if iid in claimed_ids]
            ended = [(sid, status, message) for sid, status, message in db.execute(
                select(InteractiveSession.id, InteractiveSession.status, InteractiveSession.status_message)
                .where(InteractiveSession.id.in_(ended_ids)))] if ended_ids else []
            db.commit()
            return claimed, vanished, ended

    def _db_claim_down(self, instance_ids: list[str]) -> tuple[set[str], list[str]]:
        """Of the Sail servers of nodes that are down: which to keep (an open session of theirs needs them;
        their node adopts them), and which records were switched to `stopping` (in one conditional statement
        each, so a session cannot be attached meanwhile). Servers without a record (runs, warm pools) go."""
        keep: set[str] = set()
        claimed: list[str] = []
        with self._session() as db:
            now = utcnow()
            rows = db.execute(select(ComputeInstance.id, ComputeInstance.node).where(
                ComputeInstance.id.in_(instance_ids))).all()
            for row_id, node in rows:
                open_session = exists().where(InteractiveSession.compute_instance_id == row_id,
                                              InteractiveSession.status.in_(OPEN_STATES))
                if node == self.node:
                    keep.add(row_id)  # ours after all (a moved data directory): never swept
                    continue
                if instance_states.transition(db, row_id, STOPPING, source=HELD_STATES, where=(~open_session,),
                                              now=now):
                    claimed.append(row_id)
                elif db.scalar(select(open_session)):
                    keep.add(row_id)
            db.commit()
        return keep, claimed

    def _db_instances_stopped(self, instance_ids: list[str]) -> None:
        with self._session() as db:
            instance_states.transition(db, instance_ids, STOPPED, source=(STOPPING,))
            db.commit()

    def _db_flush(self, batch: list[tuple[str, str, float]]) -> None:
        table = cast(Table, InteractiveSession.__table__)
        instances = cast(Table, ComputeInstance.__table__)
        now = utcnow()
        with self._session() as db:
            # One executemany for the batch (several sessions a tick).
            session_states.transition_each(
                db, [{"b_id": sid, "b_at": _dt(at)} for sid, _, at in batch], ACTIVE, source=OPEN_STATES, now=now,
                values={"last_activity_at": bindparam("b_at"),
                        # "starting"/"ready" said what a pending session waits for; an active one needs no word.
                        # (no IN: an expanding parameter cannot be used with executemany)
                        "status_message": case(*((table.c.status_message == m, None) for m in READINESS_MESSAGES),
                                               else_=table.c.status_message)})
            latest: dict[str, float] = {}
            for _, iid, at in batch:
                latest[iid] = max(at, latest.get(iid, 0.0))
            db.execute(
                update(instances).where(instances.c.id == bindparam("b_id"))
                .values(last_activity_at=bindparam("b_at")),
                [{"b_id": iid, "b_at": _dt(at)} for iid, at in latest.items()],
            )
            db.commit()

    def _db_timeouts(self, calls: dict[str, tuple[str, float | None]], ready: dict[str, float | None],
                     ) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str, str | None]]]:
        """Open sessions of this node: idle after idleTimeoutSeconds without calls, closed after
        idleCloseDelaySeconds more, or at timeoutAt (maxDurationSeconds after creation). Also which
        sessions in memory were ended in the database by someone else (another node's request)."""
        now = utcnow()
        idled: list[str] = []
        closed: list[tuple[str, str]] = []
        with self._session() as db:
            rows = list(db.scalars(
                select(InteractiveSession)
                .join(ComputeInstance, ComputeInstance.id == InteractiveSession.compute_instance_id)
                .where(ComputeInstance.node == self.node, InteractiveSession.status.in_(OPEN_STATES))
            ))
            open_ids = {s.id for s in rows}
            ended_elsewhere: list[tuple[str, str, str | None]] = []
            elsewhere = [sid for sid in calls if sid not in open_ids]
            if elsewhere:
                ended_elsewhere = [(sid, status, message) for sid, status, message in db.execute(
                    select(InteractiveSession.id, InteractiveSession.status, InteractiveSession.status_message)
                    .where(InteractiveSession.id.in_(elsewhere), InteractiveSession.status.not_in(OPEN_STATES)))]
            for s in rows:
                live_status, last_call = calls.get(s.id, (s.status, None))
                if now >= s.timeout_at:
                    closed.append((s.id, MAX_DURATION))
                    continue
                if s.status == IDLE and live_status == IDLE:
                    if s.idle_since is not None and now >= s.idle_since + timedelta(seconds=s.idle_close_delay_seconds):
                        closed.append((s.id, IDLE_TIMEOUT))
                    continue
                ready_at = ready.get(s.compute_instance_id)
                if ready_at is None:
                    continue  # still starting: the idle clock has not begun
                baseline = max(t for t in (_epoch(s.created_at), ready_at, _epoch(s.last_activity_at), last_call)
                               if t is not None)
                if now.timestamp() - baseline >= s.idle_timeout_seconds:
                    idled.append(s.id)
            for sid in idled:
                session_states.transition(db, sid, IDLE, source=(PENDING, ACTIVE), now=now)
            done = []
            orgs = {s.id: s.organization_id for s in rows}
            for sid, reason in closed:
                if session_states.transition(db, sid, CLOSED, source=OPEN_STATES, now=now,
                                             values={"termination_reason": reason}):
                    done.append((sid, reason))
                    self._audit_end(db, orgs[sid], sid, "session.close", {"reason": reason})
            db.commit()
        return idled, done, ended_elsewhere

    def _db_node_instances(self) -> list[tuple[str, str, str, InstanceHandle | None]]:
        with self._session() as db:
            rows = db.scalars(select(ComputeInstance).where(
                ComputeInstance.node == self.node, ComputeInstance.status.in_(HELD_STATES)))
            return [(r.id, r.cluster_id, r.status, handle_of(r)) for r in rows]

    def _db_mark_lost(self, lost: list[tuple[str, str]]) -> list[tuple[str, str]]:
        message = "The compute instance's process was gone when the server restarted."
        failed: list[tuple[str, str]] = []
        with self._session() as db:
            now = utcnow()
            for row_id, status in lost:
                final = STOPPED if status == STOPPING else INSTANCE_FAILED
                instance_states.transition(db, row_id, final, now=now,
                                           values={"status_message": None if final == STOPPED else message})
                failed += [(sid, message) for sid in
                           self._fail_open_sessions(db, [row_id], INSTANCE_LOST, message, now)]
            db.commit()
        return failed

    def _db_open_sessions(self, instance_ids: list[str]) -> list[tuple[str, str, str, datetime | None,
                                                                        datetime | None]]:
        if not instance_ids:
            return []
        with self._session() as db:
            rows = db.execute(select(
                InteractiveSession.id, InteractiveSession.compute_instance_id, InteractiveSession.status,
                InteractiveSession.last_activity_at, InteractiveSession.idle_since,
            ).where(InteractiveSession.compute_instance_id.in_(instance_ids),
                    InteractiveSession.status.in_(OPEN_STATES))).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]
