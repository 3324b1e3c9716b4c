"""Admission control: how many requests the application works on at once, and what the rest get.

At most `limit` requests are inside the application at a time (each needs at most one worker thread and
one pooled database connection at any moment, and the request pool holds `limit` connections, so an
admitted request never waits long for either). The others wait in line, first come first served,
holding nothing but their socket; a request that would wait longer than `max_wait` seconds, or finds
`max_queue` requests already waiting, is refused at once with 503, `Retry-After` and the one error
shape (`server_busy`, retryable). So under any load the server keeps working at its best rate, latency
grows with the line rather than with contention, and a client learns within `max_wait` seconds that it
should come back, instead of timing out.

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
from starlette.types import ASGIApp, Receive, Scope, Send

from sailplane.kit.errors import error_body

log = logging.getLogger("sailplane.admission")

EXEMPT = frozenset({"/healthz", "/readyz"})
RETRY_AFTER_SECONDS = 1
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
        if not await self._enter():
            await self._refuse(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._leave()

    async def _enter(self) -> bool:
        """True once admitted; False when the line is full or the wait would exceed `max_wait`."""
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return True
        if len(self._waiting) >= self.max_queue or self.max_wait <= 0:
            return False
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(turn)
        timer = loop.call_later(self.max_wait, _settle, turn, False)
        try:
            return await turn
        except asyncio.CancelledError:  # the client left (or the server stops) while waiting
            if _admitted(turn):
                self._leave()  # a slot was handed over just now: pass it on
            raise
        finally:
            timer.cancel()
            if not _admitted(turn):  # expired or cancelled: still in line
                with contextlib.suppress(ValueError):
                    self._waiting.remove(turn)

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
        if now - self._reported_at >= _REPORT_EVERY:
            log.warning("overloaded: refused %d request(s) with 503 in the last %.0f s (%d in progress, %d waiting; "
                        "limit %d, wait at most %.1f s)", self._refused_since_report,
                        min(now - self._reported_at, _REPORT_EVERY) if self._reported_at else 0.0, self.active,
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
