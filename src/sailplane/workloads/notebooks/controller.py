"""The notebook controller: drives each notebook of this node through its life, on a loop of its own.

- `starting` (set by a start request): opens a real interactive Sail session for the notebook's owner on
  the notebook's workload config (`workloads.service.open_notebook_session`; the notebook's `sessionId`),
  issues the kernel a session token, starts the notebook's marimo server through the compute boundary
  (`compute.notebook_servers`) with `SPARK_REMOTE` pointing at the gateway with that token and the
  config's `extraEnv`, waits for both, then → `running` with the server's place and its access token
  (encrypted) on the row. Any failure → `failed` with why (marimo's or Sail's last words).
- `stopping` (a stop request, a delete, a timeout): saves the `.py` file marimo wrote back into the
  database (a revision when it changed), stops marimo, closes the session → `stopped`.
- activity, from the proxy's presence on this node (`presence.NotebookPresence`) and `lastActiveAt` (ping):
  no browser attached for `notebook_detach_grace_seconds` → `detached` (stopped after the notebook's
  `detachedTimeoutSeconds`); no activity for `notebook_idle_after_seconds` → `idle`; no activity for the
  notebook's `idleTimeoutSeconds` → stopped. Activity or an attached browser brings it back to `running`.
- handover (`kernel_handover_to`, asked by the proxy when someone else than `kernel_editor` edits): the kernel
  becomes the new editor's own. Nobody edited in it yet (`kernel_editor` None, a fresh server): it is theirs as it
  is. Otherwise the source marimo saved goes to the database, the marimo server is stopped and a new one started
  (an emptied working directory, the notebook's Sail session with a new kernel token), and `kernel_generation`
  is bumped with the new editor: nothing the previous editor's code left (variables, patched modules, files in
  the working directory) reaches them. The status and `started_at` (the cookies' run) stay.
- health: a marimo server that is gone → `failed`.
- after a restart: the live notebooks of this node whose server is still there are adopted; the others
  fail (a start in progress was lost), and marimo servers no notebook owns are stopped.
- nodes of this machine and deployment that are down (`compute.nodes`): a stop asked of one of their
  notebooks meanwhile would wait for them to come back, their marimo servers and Sail sessions running on,
  so a node that is up takes the stop over (`states.hand_over`) and does it on the down node's marimo
  server; marimo servers of theirs whose notebook is stopped, failed or gone are stopped. Their live
  notebooks are left for them to adopt.

Every status change goes through `states.transition()` (a compare-and-set, so requests and this loop
never overwrite each other). The database is the source of truth; memory holds only the tasks running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from sailplane.compute.nodes import down_node_notebooks, down_nodes_notebooks
from sailplane.compute.notebook_servers import NotebookBackend, NotebookServerHandle, NotebookServerSpec
from sailplane.compute.registry import UnknownCluster
from sailplane.config import Settings
from sailplane.kit.background import PeriodicService
from sailplane.kit.clock import utcnow
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database
from sailplane.kit.loop_thread import LoopThread
from sailplane.tenancy.audit import service as audit
from sailplane.workloads import access, configs
from sailplane.workloads import service as sessions
from sailplane.workloads.controller import DOWN_NODE_SWEEP_SECONDS
from sailplane.workloads.instance_states import INSTANCE_FAILED
from sailplane.workloads.instance_states import RUNNING as INSTANCE_RUNNING
from sailplane.workloads.instance_states import STOPPED as INSTANCE_STOPPED
from sailplane.workloads.models import ComputeInstance, InteractiveSession, WorkloadConfig
from sailplane.workloads.notebooks import service as notebooks
from sailplane.workloads.notebooks.models import Notebook
from sailplane.workloads.notebooks.presence import NotebookPresence
from sailplane.workloads.notebooks.states import (
    AT_REST_STATES,
    DETACHED,
    FAILED,
    IDLE,
    LIVE_STATES,
    OPENABLE_STATES,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    hand_over,
    transition,
)
from sailplane.workloads.runtime import node_of
from sailplane.workloads.session_states import OPEN_STATES

if TYPE_CHECKING:
    from sailplane.workloads.runtime import WorkloadRuntime

log = logging.getLogger(__name__)

_MESSAGE_LIMIT = 2000
_ACTIVITY_WRITE_SECONDS = 5.0  # proxy traffic reaches lastActiveAt at most this often
SERVER_COLUMNS_CLEARED: dict[str, Any] = {"server_ref": None, "server_host": None, "server_port": None,
                                          "server_secret": None, "started_at": None, "detached_at": None,
                                          "kernel_editor": None, "kernel_handover_to": None}


def base_url(notebook_id: str) -> str:
    """Where the notebook's marimo server answers (the proxy serves it under the same path)."""
    return f"/notebooks/{notebook_id}"


def _clip(message: str) -> str:
    return message if len(message) <= _MESSAGE_LIMIT else message[: _MESSAGE_LIMIT - 1] + "…"


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class NotebookStartFailed(Exception):
    """A start cannot go on; the message is the notebook's statusMessage."""


@dataclass(frozen=True)
class LiveRow:
    id: str
    status: str
    cluster_id: str | None
    session_id: str | None
    handle: NotebookServerHandle | None
    started_at: float | None
    last_active_at: float | None
    detached_at: float | None
    idle_timeout: int
    detached_timeout: int
    session_ended: str | None = None  # why the notebook's Sail session ended, when it did while the notebook lives
    generation: int = 0
    editor: str | None = None
    handover_to: str | None = None


def handle_of(n: Notebook) -> NotebookServerHandle | None:
    if n.server_ref is None or n.server_host is None or n.server_port is None or n.started_at is None:
        return None
    return NotebookServerHandle(notebook_id=n.id, ref=n.server_ref, host=n.server_host, port=n.server_port,
                                started_at=n.started_at, base_url=base_url(n.id))


class NotebookController:
    """One per node with compute, started by `app.start_background` after the workload runtime."""

    def __init__(self, db: Database, runtime: WorkloadRuntime, presence: NotebookPresence,
                 settings: Settings) -> None:
        self.db = db
        self.runtime = runtime
        self.presence = presence
        self.settings = settings
        self.node = runtime.node
        self.encryptor = Encryptor(settings.secret_key)
        self._thread = LoopThread("notebook-controller")
        self._ticks = PeriodicService("notebook-controller", self.tick, settings.notebook_controller_interval_seconds,
                                      logger=log, failure="notebook controller tick failed", stop_timeout=10.0)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._next_sweep = 0.0  # of the marimo servers of nodes that are down

    # -- from other threads ------------------------------------------------------------------------

    def start(self) -> None:
        """Adopt or clean up this node's notebooks, then tick (blocking)."""
        self._thread.start()
        self._thread.run(self._start(), timeout=120)

    def stop(self) -> None:
        """Stop deciding things; marimo servers keep running for the next start to adopt (blocking)."""
        with contextlib.suppress(Exception):
            self._thread.run(self._stop(), timeout=90)
        self._thread.stop()

    def wake(self) -> None:
        """Tick now (a request changed a notebook)."""
        self._thread.call_soon(self._ticks.wake)

    def wait_at_rest(self, notebook_id: str, timeout: float = 60.0) -> bool:
        """Wake the controller and wait until the notebook is stopped or failed (or gone); whether it is."""
        self.wake()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.db.session() as db:
                status = db.scalar(select(Notebook.status).where(Notebook.id == notebook_id))
            if status is None or status in AT_REST_STATES:
                return True
            time.sleep(0.1)
        return False

    # -- on the loop -------------------------------------------------------------------------------

    async def _start(self) -> None:
        await self._reconcile()
        self._ticks.start()

    async def _stop(self) -> None:
        await self._ticks.stop()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=60)

    def _spawn(self, notebook_id: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"notebook-{notebook_id}")
        self._tasks[notebook_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._tasks.get(notebook_id) is t:
                del self._tasks[notebook_id]
            self._ticks.wake()  # what it left (a stop asked meanwhile) is seen at once

        task.add_done_callback(done)

    def _backend(self, cluster_id: str | None) -> NotebookBackend | None:
        if cluster_id is None:
            return None
        try:
            return self.runtime.backends.notebooks(cluster_id)
        except UnknownCluster:
            return None

    async def tick(self) -> None:
        rows = await asyncio.to_thread(self._db_live)
        now = time.time()
        activity: list[tuple[str, float]] = []
        changes: list[tuple[str, str, str, dict[str, Any]]] = []  # (id, from, to, values)
        for row in rows:
            if row.id in self._tasks:
                continue
            if row.status == STARTING:
                self._spawn(row.id, self._start_notebook(row.id))
                continue
            if row.status == STOPPING:
                self._spawn(row.id, self._stop_notebook(row.id))
                continue
            if row.handover_to is not None and row.status in OPENABLE_STATES:
                self._spawn(row.id, self._handover(row.id))
                continue
            if row.session_ended is not None:
                self._spawn(row.id, self._fail(row.id, f"The notebook's Sail session ended. {row.session_ended}"))
                continue
            backend = self._backend(row.cluster_id)
            if row.handle is None or backend is None or not backend.running(row.handle):
                tail = backend.output_tail(row.id) if backend is not None else ""
                message = "The notebook's marimo server stopped unexpectedly." + (f"\n{tail}" if tail else "")
                self._spawn(row.id, self._fail(row.id, message))
                continue
            seen = self.presence.last_seen(row.id)
            if seen is not None and (row.last_active_at is None
                                     or seen - row.last_active_at >= _ACTIVITY_WRITE_SECONDS):
                activity.append((row.id, seen))
            change = self._decide(row, now, seen)
            if change is not None:
                changes.append((row.id, row.status, *change))
        if activity or changes:
            stopping = await asyncio.to_thread(self._db_apply, activity, changes)
            for notebook_id in stopping:
                if notebook_id not in self._tasks:
                    self._spawn(notebook_id, self._stop_notebook(notebook_id))
        await self._sweep_down_nodes()

    def _kernel_token_lasts(self) -> float:
        """How long after its server started a notebook's kernel token still surely holds: the token is issued
        (for `session_token_max_seconds`) before marimo starts, which takes at most the start timeout. The
        kernel's SPARK_REMOTE cannot be given a new token, so the notebook stops before the gateway refuses it."""
        return self.settings.session_token_max_seconds - self.settings.notebook_start_timeout_seconds - 5

    def _decide(self, row: LiveRow, now: float, seen: float | None) -> tuple[str, dict[str, Any]] | None:
        """The status a running/idle/detached notebook should have now, with the values to write (None: as is)."""
        ready = row.started_at or now
        last_active = max(t for t in (ready, row.last_active_at, seen) if t is not None)
        attached = self.presence.attached(row.id)
        if row.started_at is not None and now >= row.started_at + self._kernel_token_lasts():
            return STOPPING, {"status_message": (
                f"Stopped: it ran for the longest its kernel's Spark session token lasts "
                f"({self.settings.session_token_max_seconds} s, SAILPLANE_SESSION_TOKEN_MAX_SECONDS); start it again.")}
        if row.status == DETACHED and row.detached_at is not None and not attached \
                and now - row.detached_at >= row.detached_timeout:
            return STOPPING, {"status_message": f"Stopped: no browser was attached for {row.detached_timeout} s."}
        if now - last_active >= row.idle_timeout:
            return STOPPING, {"status_message": f"Stopped: no activity for {row.idle_timeout} s."}
        away_since = max(t for t in (ready, seen) if t is not None)
        if not attached and now - away_since >= self.settings.notebook_detach_grace_seconds:
            return (DETACHED, {"detached_at": _dt(away_since)}) if row.status != DETACHED else None
        if now - last_active >= min(self.settings.notebook_idle_after_seconds, row.idle_timeout):
            return (IDLE, {"detached_at": None}) if row.status != IDLE else None
        return (RUNNING, {"detached_at": None}) if row.status != RUNNING else None

    # -- starting ----------------------------------------------------------------------------------

    async def _start_notebook(self, notebook_id: str) -> None:
        try:
            prepared = await asyncio.to_thread(self._db_open_session, notebook_id)
            if prepared is None:
                return  # no longer starting (stopped meanwhile, deleted)
            spec, cluster_id, session_id = prepared
            backend = self._backend(cluster_id)
            if backend is None:
                raise NotebookStartFailed(f"No notebook server backend of this node serves the cluster {cluster_id}.")
            try:
                handle = await backend.start(spec, timeout=self.settings.notebook_start_timeout_seconds)
            except Exception as exc:
                raise NotebookStartFailed(f"The notebook's marimo server could not start. {exc}") from exc
            try:
                await self._wait_for_sail(notebook_id, session_id)
            except BaseException:
                await backend.stop(handle, grace=2.0)
                raise
            if not await asyncio.to_thread(self._db_running, notebook_id, handle, spec.token):
                return  # stopping meanwhile: the server's place is recorded, the stop task stops it
        except asyncio.CancelledError:
            raise
        except NotebookStartFailed as exc:
            log.warning("notebook %s failed to start: %s", notebook_id, exc)
            await self._fail(notebook_id, str(exc))
        except Exception as exc:
            log.exception("notebook %s failed to start", notebook_id)
            await self._fail(notebook_id, f"The notebook could not start: {exc}")

    async def _wait_for_sail(self, notebook_id: str, session_id: str) -> None:
        """Until the session's Sail server serves, or the notebook is no longer starting (a stop: what started
        is recorded for it); NotebookStartFailed when it failed or took too long."""
        deadline = time.monotonic() + self.settings.compute_start_timeout_seconds + 30
        delay = 0.1
        while True:
            status, message = await asyncio.to_thread(self._db_sail_status, notebook_id, session_id)
            if status in (INSTANCE_RUNNING, "abandoned"):
                return
            if status is not None:
                raise NotebookStartFailed(f"The notebook's Sail session did not start. {message or ''}".strip())
            if time.monotonic() >= deadline:
                raise NotebookStartFailed("The notebook's Sail session did not start in time.")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    # -- handing the kernel over -------------------------------------------------------------------

    async def _handover(self, notebook_id: str) -> None:
        """A kernel of its own for the holder the proxy asked it for (see the module)."""
        row = await asyncio.to_thread(self._db_row, notebook_id)
        if row is None or row.status not in OPENABLE_STATES or row.handover_to is None:
            return
        to = row.handover_to
        if row.editor is None or row.editor == to:
            await asyncio.to_thread(self._db_kernel_claimed, notebook_id, row.generation, to)
            self.presence.kernel_changed(notebook_id)
            return
        backend = self._backend(row.cluster_id)
        try:
            if backend is None or row.handle is None:
                raise NotebookStartFailed("The notebook's marimo server is not known on this node.")
            text = await backend.read_source(row.handle)  # the source first: nothing saved is lost
            if text is not None:
                await asyncio.to_thread(self._db_save_source, notebook_id, text)
            await backend.stop(row.handle)
            await backend.stop_by_id(notebook_id)
            spec = await asyncio.to_thread(self._db_kernel_spec, notebook_id)
            if spec is None:
                return  # stopping meanwhile: the stop finds no server left, the source is saved
            try:
                handle = await backend.start(spec, timeout=self.settings.notebook_start_timeout_seconds)
            except Exception as exc:
                raise NotebookStartFailed(f"The notebook's new marimo server could not start. {exc}") from exc
            await asyncio.to_thread(self._db_handed_over, notebook_id, row.generation, to, handle, spec.token)
            self.presence.kernel_changed(notebook_id)
            log.info("notebook %s: kernel generation %d handed to a new editor", notebook_id, row.generation + 1)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("notebook %s: handing its kernel over failed: %s", notebook_id, exc)
            await self._fail(notebook_id, _clip(f"The notebook's kernel could not be handed over. {exc}"), backend)

    # -- stopping and failing ----------------------------------------------------------------------

    async def _release(self, notebook_id: str, cluster_id: str | None, handle: NotebookServerHandle | None,
                       backend: NotebookBackend | None = None) -> None:
        """Save what marimo wrote, then stop its server (by its handle, or whatever runs for the notebook), on
        `backend` (a down node's, whose stop this node took over) or this node's backend of the cluster."""
        if backend is None:
            backend = self._backend(cluster_id)
        if backend is None:
            return
        if handle is not None:
            text = await backend.read_source(handle)
            if text is not None:
                await asyncio.to_thread(self._db_save_source, notebook_id, text)
            await backend.stop(handle)
        await backend.stop_by_id(notebook_id)

    async def _stop_notebook(self, notebook_id: str, backend: NotebookBackend | None = None) -> None:
        """stopping → stopped; its marimo server on `backend` (see `_release`)."""
        row = await asyncio.to_thread(self._db_row, notebook_id)
        if row is None or row.status != STOPPING:
            return
        try:
            await self._release(notebook_id, row.cluster_id, row.handle, backend)
        except Exception as exc:
            log.exception("stopping notebook %s failed", notebook_id)
            await self._fail(notebook_id, f"The notebook's server could not be stopped cleanly: {exc}", backend)
            return
        closed = await asyncio.to_thread(self._db_end, notebook_id, row.session_id, STOPPED, None)
        self._ended(notebook_id, closed)

    async def _fail(self, notebook_id: str, message: str, backend: NotebookBackend | None = None) -> None:
        row = await asyncio.to_thread(self._db_row, notebook_id)
        if row is None:
            return
        try:
            await self._release(notebook_id, row.cluster_id, row.handle, backend)
        except Exception:
            log.exception("cleaning up after notebook %s failed", notebook_id)
        # A notebook someone was stopping anyway (a start that failed meanwhile) just stops.
        target = STOPPED if row.status == STOPPING else FAILED
        closed = await asyncio.to_thread(self._db_end, notebook_id, row.session_id, target, _clip(message))
        self._ended(notebook_id, closed)

    def _ended(self, notebook_id: str, closed_session: str | None) -> None:
        self.presence.forget(notebook_id)
        if closed_session is not None:
            sessions.notebook_session_closed(self.runtime, closed_session)

    # -- notebooks of nodes that are down ----------------------------------------------------------

    async def _sweep_down_nodes(self) -> None:
        """Stop what nodes of this machine and deployment that are down no longer need (every few seconds):
        the notebooks stopping on them are taken over and stopped as their node would (source saved, marimo
        stopped, Sail session closed), the marimo servers of their notebooks at rest or gone are stopped.
        Their live notebooks keep their servers, for their node to adopt when it is back."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + max(self.settings.notebook_controller_interval_seconds,
                                                  DOWN_NODE_SWEEP_SECONDS)
        found = await asyncio.to_thread(down_nodes_notebooks, self.runtime.node_dir, self.runtime.deployment)
        for data_dir, notebook_ids in found.items():
            pending = sorted(notebook_ids - self._tasks.keys())  # not those this node is already stopping
            if not pending:
                continue
            taken, unused = await asyncio.to_thread(self._db_take_over, node_of(data_dir), pending)
            backend = down_node_notebooks(data_dir)
            for notebook_id in taken:
                log.warning("stopping notebook %s for its node (%s), which is down", notebook_id, data_dir)
                self._spawn(notebook_id, self._stop_notebook(notebook_id, backend))
            for notebook_id in unused:
                self._spawn(notebook_id, self._stop_unused(notebook_id, backend, data_dir))

    async def _stop_unused(self, notebook_id: str, backend: NotebookBackend, data_dir: str) -> None:
        """Stop the marimo server a down node left for a notebook that is at rest or gone (nothing to save:
        the notebook's stored source is the one that counts now)."""
        try:
            if await backend.stop_by_id(notebook_id):
                log.warning("stopped the marimo server of notebook %s left by the node of %s, which is down",
                            notebook_id, data_dir)
        except Exception:
            log.exception("stopping the marimo server of notebook %s left by the node of %s failed",
                          notebook_id, data_dir)

    # -- after a restart ---------------------------------------------------------------------------

    async def _reconcile(self) -> None:
        rows = await asyncio.to_thread(self._db_live)
        keep: list[str] = []
        for row in rows:
            backend = self._backend(row.cluster_id)
            found = backend is not None and row.handle is not None and await backend.find(row.handle)
            if row.status in OPENABLE_STATES and found:
                keep.append(row.id)  # adopted: the tick watches it from now on
            elif row.status == STOPPING:
                keep.append(row.id)  # the tick finishes the stop
            elif row.status == STARTING:
                await self._fail(row.id, "The server restarted while the notebook was starting; start it again.")
            else:
                await self._fail(row.id, "The notebook's marimo server was gone when the server restarted.")
        stopped = [nid for backend in self.runtime.backends.all_notebooks() for nid in await backend.stop_orphans(keep)]
        if stopped:
            log.warning("stopped %d marimo server(s) no notebook owns: %s", len(stopped), ", ".join(stopped))
        if rows:
            log.info("notebooks of this node after the restart: %d kept, %d ended", len(keep), len(rows) - len(keep))

    # -- database work (blocking; in a worker thread) ----------------------------------------------

    def _live(self, n: Notebook, cluster_id: str | None, session_ended: str | None = None) -> LiveRow:
        return LiveRow(n.id, n.status, cluster_id, n.session_id, handle_of(n), _epoch(n.started_at),
                       _epoch(n.last_active_at), _epoch(n.detached_at), n.idle_timeout_seconds,
                       n.detached_timeout_seconds, session_ended, n.kernel_generation, n.kernel_editor,
                       n.kernel_handover_to)

    def _db_take_over(self, down_node: str, notebook_ids: list[str]) -> tuple[list[str], list[str]]:
        """Of the notebooks whose marimo servers a node that is down (`down_node`) left: those stopping on it,
        now this node's (`hand_over`, one conditional statement each: of two nodes that are up, one takes
        each), and those at rest or gone, whose servers no one needs. The others are left alone."""
        taken: list[str] = []
        unused: list[str] = []
        with self.db.session() as db:
            found = dict(db.execute(select(Notebook.id, Notebook.status).where(Notebook.id.in_(notebook_ids))).all())
            for notebook_id in notebook_ids:
                status = found.get(notebook_id)
                if status is None or status in AT_REST_STATES:
                    unused.append(notebook_id)
                elif status == STOPPING and hand_over(db, notebook_id, self.node, from_node=down_node):
                    taken.append(notebook_id)
            db.commit()
        return taken, unused

    def _db_live(self) -> list[LiveRow]:
        """This node's live notebooks, with why their session ended when it did (closed or failed elsewhere:
        its owner lost access, its Sail server died)."""
        with self.db.session() as db:
            rows = db.execute(select(Notebook, WorkloadConfig.cluster_id, InteractiveSession.status,
                                     InteractiveSession.status_message)
                              .join(WorkloadConfig, WorkloadConfig.id == Notebook.workload_config_id)
                              .outerjoin(InteractiveSession, InteractiveSession.id == Notebook.session_id)
                              .where(Notebook.node == self.node, Notebook.status.in_(LIVE_STATES))).all()
            found = []
            for n, cluster_id, session_status, session_message in rows:
                ended = None
                if n.status in OPENABLE_STATES and session_status is not None and session_status not in OPEN_STATES:
                    ended = f"It is {session_status}" + (f": {session_message}" if session_message else ".")
                found.append(self._live(n, cluster_id, ended))
            return found

    def _db_row(self, notebook_id: str) -> LiveRow | None:
        with self.db.session() as db:
            row = db.execute(select(Notebook, WorkloadConfig.cluster_id)
                             .join(WorkloadConfig, WorkloadConfig.id == Notebook.workload_config_id)
                             .where(Notebook.id == notebook_id)).first()
            return self._live(row[0], row[1]) if row is not None else None

    def _db_open_session(self, notebook_id: str) -> tuple[NotebookServerSpec, str, str] | None:
        """The notebook's Sail session (committed, its server being started) and what marimo runs with."""
        with self.db.session() as db:
            notebook = db.get(Notebook, notebook_id)
            if notebook is None or notebook.status != STARTING or notebook.node != self.node:
                return None
            config = db.get(WorkloadConfig, notebook.workload_config_id)
            if config is None:
                raise NotebookStartFailed("The notebook's workload config is gone.")
            owner = access.member_principal(db, notebook.organization_id, notebook.member_id)
            if owner is None:
                raise NotebookStartFailed("The notebook's owner is no longer an active member of the organization.")
            session = sessions.open_notebook_session(db, owner, self.runtime, config, notebook.id, notebook.name)
            # Also when a stop came in meanwhile: the stop (after this task) closes the session it names.
            db.execute(update(Notebook).where(Notebook.id == notebook.id, Notebook.status.in_((STARTING, STOPPING)))
                       .values(session_id=session.id))
            audit.record(db, None, None, "session.create", "session", session.id,
                         organization_id=notebook.organization_id, actor_type="system",
                         details={"notebookId": notebook.id, "workloadConfigId": config.id,
                                  "computeInstanceId": session.compute_instance_id})
            db.commit()
            sessions.notebook_session_opened(self.runtime, session, config)
            return self._spec(notebook, config, session), config.cluster_id, session.id

    def _spec(self, notebook: Notebook, config: WorkloadConfig, session: InteractiveSession) -> NotebookServerSpec:
        """What the notebook's marimo server runs with: its source, a new access token, and the kernel's
        SPARK_REMOTE to the notebook's session with a new session token."""
        token = sessions.notebook_token(self.runtime, session, notebook.id)
        remote = f"{self.runtime.grpc_endpoint}/;token={token}" + (";use_ssl=true" if self.runtime.tls else "")
        instance = configs.instance_spec(config, session.compute_instance_id, self.encryptor)
        env = {**instance.extra_env, "SPARK_REMOTE": remote}
        return NotebookServerSpec(notebook_id=notebook.id, source=notebook.source, token=secrets.token_urlsafe(32),
                                  env=env, libraries=instance.libraries, base_url=base_url(notebook.id))

    def _db_kernel_spec(self, notebook_id: str) -> NotebookServerSpec | None:
        """The spec of a new marimo server for the open notebook, on its Sail session (None: no longer open)."""
        with self.db.session() as db:
            notebook = db.get(Notebook, notebook_id)
            if notebook is None or notebook.status not in OPENABLE_STATES or notebook.session_id is None:
                return None
            config = db.get(WorkloadConfig, notebook.workload_config_id)
            session = db.get(InteractiveSession, notebook.session_id)
            if config is None or session is None:
                raise NotebookStartFailed("The notebook's workload config or Sail session is gone.")
            return self._spec(notebook, config, session)

    def _db_kernel_claimed(self, notebook_id: str, generation: int, editor: str) -> None:
        """The kernel nobody edited in yet becomes `editor`'s as it is (same generation)."""
        with self.db.session() as db:
            db.execute(update(Notebook).where(Notebook.id == notebook_id, Notebook.kernel_generation == generation,
                                              Notebook.status.in_(OPENABLE_STATES))
                       .values(kernel_editor=editor, kernel_handover_to=None))
            db.commit()

    def _db_handed_over(self, notebook_id: str, generation: int, editor: str, handle: NotebookServerHandle,
                        token: str) -> None:
        """The new server's place, the next generation and its editor; when the notebook is stopping meanwhile,
        the place only (for the stop) and the next generation (no cookie of before edits in anything)."""
        server = {"server_ref": handle.ref, "server_host": handle.host, "server_port": handle.port,
                  "server_secret": self.encryptor.encrypt(token), "kernel_generation": generation + 1,
                  "kernel_handover_to": None}
        with self.db.session() as db:
            result = db.execute(update(Notebook).where(Notebook.id == notebook_id,
                                                       Notebook.kernel_generation == generation,
                                                       Notebook.status.in_(OPENABLE_STATES))
                                .values({**server, "kernel_editor": editor, "updated_at": utcnow()}))
            if not result.rowcount:  # type: ignore[attr-defined]
                db.execute(update(Notebook).where(Notebook.id == notebook_id, Notebook.status == STOPPING)
                           .values(server))
            db.commit()

    def _db_sail_status(self, notebook_id: str, session_id: str) -> tuple[str | None, str | None]:
        """(INSTANCE_RUNNING, None) once the session's Sail server serves; ("abandoned", None) once the notebook
        is no longer starting; (a final status, why) when the session or its server ended; (None, None) while
        it starts."""
        with self.db.session() as db:
            if db.scalar(select(Notebook.status).where(Notebook.id == notebook_id)) != STARTING:
                return "abandoned", None
            row = db.execute(select(InteractiveSession.status, InteractiveSession.status_message,
                                    ComputeInstance.status, ComputeInstance.status_message)
                             .join(ComputeInstance, ComputeInstance.id == InteractiveSession.compute_instance_id)
                             .where(InteractiveSession.id == session_id)).first()
        if row is None:
            return "gone", "The session is gone."
        session_status, session_message, instance_status, instance_message = row
        if session_status not in OPEN_STATES:
            return session_status, session_message
        if instance_status in (INSTANCE_FAILED, INSTANCE_STOPPED):
            return instance_status, instance_message
        return (INSTANCE_RUNNING, None) if instance_status == INSTANCE_RUNNING else (None, None)

    def _db_running(self, notebook_id: str, handle: NotebookServerHandle, token: str) -> bool:
        """starting → running with the server's place; when it is stopping meanwhile, the place only
        (for the stop). False when it is not running now."""
        server = {"server_ref": handle.ref, "server_host": handle.host, "server_port": handle.port,
                  "server_secret": self.encryptor.encrypt(token), "started_at": handle.started_at}
        with self.db.session() as db:
            now = utcnow()
            done = transition(db, notebook_id, RUNNING, source=(STARTING,), now=now,
                              values={**server, "status_message": None, "detached_at": None, "last_active_at": now,
                                      "kernel_editor": None, "kernel_handover_to": None})
            if not done:
                db.execute(update(Notebook).where(Notebook.id == notebook_id, Notebook.status == STOPPING)
                           .values(server))
            db.commit()
            return done

    def _db_save_source(self, notebook_id: str, text: str) -> None:
        with self.db.session() as db:
            notebooks.save_server_source(db, notebook_id, text)
            db.commit()

    def _db_end(self, notebook_id: str, session_id: str | None, target: str, message: str | None) -> str | None:
        """The notebook → `target` (stopped from stopping; failed from any live state) with its server
        columns cleared, and its session closed; the session's ID when this closed it."""
        with self.db.session() as db:
            values: dict[str, Any] = {**SERVER_COLUMNS_CLEARED, "session_id": None}
            if target == FAILED:
                values["status_message"] = message
            transition(db, notebook_id, target, source=(STOPPING,) if target == STOPPED else LIVE_STATES,
                       values=values)
            closed = session_id is not None and sessions.close_notebook_session(db, session_id, message)
            db.commit()
            return session_id if closed else None

    def _db_apply(self, activity: list[tuple[str, float]], changes: list[tuple[str, str, str, dict[str, Any]]],
                  ) -> list[str]:
        """Proxy activity into lastActiveAt, and the status changes decided (each from the status it was
        decided on); the notebooks now stopping."""
        stopping: list[str] = []
        with self.db.session() as db:
            for notebook_id, seen in activity:
                db.execute(update(Notebook).where(Notebook.id == notebook_id, Notebook.status.in_(OPENABLE_STATES))
                           .values(last_active_at=_dt(seen)))
            for notebook_id, current, target, values in changes:
                if transition(db, notebook_id, target, source=(current,), values=values) and target == STOPPING:
                    stopping.append(notebook_id)
            db.commit()
        return stopping
