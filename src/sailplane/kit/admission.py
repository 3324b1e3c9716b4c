"""Admission control: how many requests the application works on at once, and what the rest get.

At most `limit` requests are inside the application at a time (each needs at most one worker thread and
one pooled database connection at any moment, and the request pool holds `limit` connections, so an
admitted request never waits long for either). The others wait in line, first come first served,
holding nothing but their socket. A request that finds `max_queue` requests already waiting, or has
waited `max_wait` seconds, is refused with 503, `Retry-After` and the one error shape (`server_busy`,
retryable). A waiting request whose client disconnects leaves the line: no work is spent on answers
nobody reads, and the server is free again as soon as a burst of clients goes away. So under any load
the server keeps working at its best rate, latency grows with the line rather than with contention,
and a client learns within `max_wait` seconds that it should come back instead of timing out.

The probes (/healthz, /readyz) are never held back: a busy server is alive and ready, only busy. The
session controller, scheduler, dispatcher and the gateway's checks have their own connection pool (see
app.py), so request load cannot starve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sailplane.kit.errors import error_body

log = logging.getLogger("sailplane.admission")

EXEMPT = frozenset({"/healthz", "/readyz"})
RETRY_AFTER_SECONDS = 1
_WATCHED_BODY_LIMIT = 64 * 1024  # bytes a waiting request's body may have to be read while it waits
_ADMITTED, _REFUSED, _LEFT = "admitted", "refused", "left"
_REPORT_EVERY = 10.0  # seconds between log lines about refused requests


class AdmissionControl:
    """Pure ASGI middleware (no BaseHTTPMiddleware): one counter and a queue of futures, on the event loop."""

    def __init__(self, app: ASGIApp, *, limit: int, max_wait: float, max_queue: int,
                 exempt: frozenset[str] = EXEMPT) -> None:
        if limit < 1:
            raise ValueError("the request concurrency limit must be at least 1")
        self.app = app
        self.limit = limit
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.exempt = exempt
        self.active = 0
        self._waiting: deque[asyncio.Future[bool]] = deque()
        self.refused = 0
        self._refused_since_report = 0
        self._reported_at = 0.0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.active < self.limit and not self._waiting:
            self.active += 1
        else:
            outcome, receive = await self._wait(scope, receive)
            if outcome == _LEFT:
                return  # nobody to answer
            if outcome == _REFUSED:
                await self._refuse(scope, receive, send)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            self._leave()

    async def _wait(self, scope: Scope, receive: Receive) -> tuple[str, Receive]:
        """Wait in line: admitted (the slot is ours), refused (the line is full, or this waited `max_wait`
        seconds), or left (the client disconnected meanwhile: its request is dropped, not worked on later
        for nobody). To notice a disconnect the request's body is read while waiting (only a small one) and
        handed to the application unchanged."""
        if len(self._waiting) >= self.max_queue or self.max_wait <= 0:
            return _REFUSED, receive
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(turn)
        timer = loop.call_later(self.max_wait, _settle, turn, False)
        body: list[Message] = []
        watcher = loop.create_task(_watch(receive, body)) if _small_body(scope) else None
        try:
            if watcher is None:
                await turn
            else:
                await asyncio.wait((turn, watcher), return_when=asyncio.FIRST_COMPLETED)
                if watcher.done():  # disconnected (or its receive failed): gone either way
                    if not watcher.cancelled():
                        watcher.exception()  # retrieved: a failed receive means the connection is gone
                    if _admitted(turn):
                        self._leave()  # a slot was handed over just now: pass it on
                    return _LEFT, receive
        except asyncio.CancelledError:  # the server stops (or the client left) while this waits
            if _admitted(turn):
                self._leave()
            raise
        finally:
            timer.cancel()
            if not _admitted(turn):  # refused, left or cancelled: still in line
                turn.cancel()
                with contextlib.suppress(ValueError):
                    self._waiting.remove(turn)
            if watcher is not None and not watcher.done():
                watcher.cancel()  # it waits for a disconnect only; nothing of the request is lost
        if not turn.result():
            return _REFUSED, receive
        return _ADMITTED, _replay(body, receive)

    def _leave(self) -> None:
        """Hand the slot to the longest-waiting request still waiting, else free it."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(True)
                return
        self.active -= 1

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.refused += 1
        self._refused_since_report += 1
        now = time.monotonic()
        if now - self._reported_at >= _REPORT_EVERY:  # one line per _REPORT_EVERY seconds at most, not one per refusal
            log.warning("overloaded: refused %d request(s) with 503 since the last report (%d in progress, %d waiting; "
                        "at most %d at once, waiting at most %.1f s)", self._refused_since_report, self.active,
                        len(self._waiting), self.limit, self.max_wait)
            self._reported_at, self._refused_since_report = now, 0
        request = Request(scope, receive)
        body = error_body(503, "server_busy", f"The server is busy; retry in {RETRY_AFTER_SECONDS} s.", request,
                          retryable=True, retry_after=RETRY_AFTER_SECONDS)
        response = JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        await response(scope, receive, send)


def _settle(turn: asyncio.Future[bool], value: bool) -> None:
    if not turn.done():
        turn.set_result(value)


def _admitted(turn: asyncio.Future[bool]) -> bool:
    return turn.done() and not turn.cancelled() and turn.result()


def _small_body(scope: Scope) -> bool:
    """A request whose body is read while it waits: none, or a short one of known length."""
    length = None
    for name, value in scope.get("headers") or ():
        if name == b"transfer-encoding":
            return False
        if name == b"content-length":
            length = value
    try:
        return length is None or int(length) <= _WATCHED_BODY_LIMIT
    except ValueError:
        return False


async def _watch(receive: Receive, body: list[Message]) -> None:
    """Read the request (keeping its body messages) until the client disconnects."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body.append(message)


def _replay(body: list[Message], receive: Receive) -> Receive:
    """`receive` for the application: the body messages read while waiting, then the connection's own."""
    if not body:
        return receive

    async def replay() -> Message:
        if body:
            return body.pop(0)
        return await receive()

    return replay


def install_admission_control(app: FastAPI, *, limit: int, max_wait: float, max_queue: int) -> None:
    """Admission control around the routes (inside the request-ID middleware, so a refusal carries its ID),
    and a pool timeout answered like a refusal rather than as an internal error."""
    app.add_middleware(AdmissionControl, limit=limit, max_wait=max_wait, max_queue=max_queue)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("no database connection became free in time: %s", exc)
        body = error_body(503, "server_busy", f"The server is busy; retry in {RETRY_AFTER_SECONDS} s.", request,
                          retryable=True, retry_after=RETRY_AFTER_SECONDS)
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
