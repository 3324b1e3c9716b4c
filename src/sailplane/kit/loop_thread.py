"""An event loop in a daemon thread of its own, driven from synchronous code (the app factory, the CLI,
tests and benches).

Background services run on such loops rather than the ASGI server's, so that neither side's work
(gRPC relays, dispatching, HTTP requests) can stall the other, whatever loop uvicorn uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any


class LoopThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._loop.is_closed()

    def start(self) -> None:
        """Start the loop (idempotent)."""
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._thread.start()

    def run(self, coro: Awaitable[Any], *, timeout: float | None = None) -> Any:
        """Run a coroutine on the loop and wait for its result (from another thread)."""

        async def wrapper() -> Any:
            return await coro

        future: Future[Any] = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return future.result(timeout)

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call `fn` on the loop soon (thread-safe); nothing once the loop is closed."""
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                self._loop.call_soon_threadsafe(fn, *args)

    def stop(self, *, join_timeout: float = 30.0) -> None:
        """Stop the loop and close it (what still runs on it is abandoned: stop the services first)."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=join_timeout)
        self._loop.close()
