"""Admission control on its own (kit/admission.py), around an application that answers when told to:
requests beyond the limit wait in line in order, a full line or a wait past the bound is refused at once
with 503, Retry-After and the one error shape, and a client that leaves while waiting gives up its place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.types import Message, Receive, Scope, Send

from sailplane.kit.admission import AdmissionControl
from sailplane.kit.requests import RequestIdMiddleware


class Gate:
    """An ASGI app whose requests finish only when released, in any order; it records who got in."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    def opener(self, path: str) -> asyncio.Event:
        return self.release.setdefault(path, asyncio.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered.append(scope["path"])
        await self.opener(scope["path"]).wait()
        body = b""
        while True:  # echo the request body
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body or b"ok"})


def run(test: Callable[[Gate, AdmissionControl, httpx.AsyncClient], Awaitable[None]], **limits: Any) -> None:
    async def main() -> None:
        gate = Gate()
        admission = AdmissionControl(gate, **{"limit": 1, "max_wait": 5.0, "max_queue": 10, **limits})
        transport = httpx.ASGITransport(app=RequestIdMiddleware(admission))
        async with httpx.AsyncClient(transport=transport, base_url="http://sailplane.test") as client:
            await test(gate, admission, client)
        assert admission.active == 0 and admission.waiting == 0

    asyncio.run(main())


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def assert_busy(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    error = r.json()["error"]
    assert error["code"] == "server_busy" and error["errorType"] == "unavailable"
    assert error["details"]["retryable"] is True and error["details"]["retryAfter"] == 1
    assert error["details"]["requestId"] == r.headers["x-request-id"]


def test_requests_beyond_the_limit_wait_in_order() -> None:
    async def check(gate: Gate, admission: AdmissionControl, client: httpx.AsyncClient) -> None:
        calls = {p: asyncio.create_task(client.get(p)) for p in ("/a", "/b", "/c", "/d")}
        await settle()
        assert gate.entered == ["/a"] and admission.active == 1 and admission.waiting == 3
        for path, expected in (("/a", ["/a", "/b"]), ("/b", ["/a", "/b", "/c"]), ("/c", ["/a", "/b", "/c", "/d"])):
            gate.opener(path).set()
            assert (await calls[path]).status_code == 200
            await settle()
            assert gate.entered == expected
        gate.opener("/d").set()
        assert (await calls["/d"]).status_code == 200

    run(check, limit=1)


def test_a_full_line_is_refused_at_once() -> None:
    async def check(gate: Gate, admission: AdmissionControl, client: httpx.AsyncClient) -> None:
        held = [asyncio.create_task(client.get(p)) for p in ("/a", "/b", "/c")]
        await settle()
        started = time.monotonic()
        assert_busy(await client.get("/d"))
        assert time.monotonic() - started < 0.5
        assert gate.entered == ["/a", "/b"] and admission.refused == 1
        for p in ("/a", "/b", "/c"):
            gate.opener(p).set()
        assert [(await t).status_code for t in held] == [200, 200, 200]

    run(check, limit=2, max_queue=1)


def test_a_wait_past_the_bound_is_refused() -> None:
    async def check(gate: Gate, admission: AdmissionControl, client: httpx.AsyncClient) -> None:
        first = asyncio.create_task(client.get("/a"))
        await settle()
        started = time.monotonic()
        assert_busy(await client.get("/b"))
        assert 0.3 <= time.monotonic() - started < 2.0
        assert gate.entered == ["/a"] and admission.waiting == 0
        gate.opener("/a").set()
        assert (await first).status_code == 200
        gate.opener("/c").set()
        assert (await client.get("/c")).status_code == 200  # free again: straight in

    run(check, limit=1, max_wait=0.3)


def test_a_client_that_leaves_gives_up_its_place() -> None:
    async def check(gate: Gate, admission: AdmissionControl, client: httpx.AsyncClient) -> None:
        first = asyncio.create_task(client.get("/a"))
        await settle()
        leaving = asyncio.create_task(client.get("/b"))
        staying = asyncio.create_task(client.get("/c"))
        await settle()
        assert admission.waiting == 2
        leaving.cancel()
        await settle()
        assert admission.waiting == 1
        gate.opener("/a").set()
        gate.opener("/c").set()
        assert (await first).status_code == 200 and (await staying).status_code == 200
        assert gate.entered == ["/a", "/c"]

    run(check, limit=1)


def test_a_waiting_request_gets_its_body_intact() -> None:
    async def check(gate: Gate, admission: AdmissionControl, client: httpx.AsyncClient) -> None:
        first = asyncio.create_task(client.get("/a"))
        await settle()
        payload = b'{"name": "' + b"x" * 5000 + b'"}'
        waiting = asyncio.create_task(client.post("/b", content=payload))
        await settle()
        assert admission.waiting == 1
        gate.opener("/a").set()
        gate.opener("/b").set()
        assert (await first).status_code == 200
        r = await waiting
        assert r.status_code == 200 and r.content == payload

    run(check, limit=1)


def test_a_disconnected_client_leaves_the_line_unanswered() -> None:
    """What a server such as uvicorn does when the client hangs up: `receive` answers http.disconnect (the
    request's task goes on). Such a request must not be worked on once its turn comes."""

    async def main() -> None:
        gate = Gate()
        admission = AdmissionControl(gate, limit=1, max_wait=5.0, max_queue=10)

        async def call(path: str, hang_up: asyncio.Event | None = None) -> list[Message]:
            sent: list[Message] = []
            request_read = False

            async def receive() -> Message:
                nonlocal request_read
                if not request_read:
                    request_read = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                await (hang_up or asyncio.Event()).wait()
                return {"type": "http.disconnect"}

            async def send(message: Message) -> None:
                sent.append(message)

            scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
            await admission(scope, receive, send)
            return sent

        first = asyncio.create_task(call("/a"))
        await settle()
        hang_up = asyncio.Event()
        gone = asyncio.create_task(call("/b", hang_up))
        later = asyncio.create_task(call("/c"))
        await settle()
        assert admission.waiting == 2
        hang_up.set()
        assert await gone == []  # nothing sent: nobody to send it to
        assert admission.waiting == 1
        gate.opener("/a").set()
        gate.opener("/c").set()
        assert (await first)[0]["status"] == 200 and (await later)[0]["status"] == 200
        assert gate.entered == ["/a", "/c"]
        assert admission.active == 0 and admission.waiting == 0

    asyncio.run(main())


def test_probes_are_never_held_back() -> None:
    async def check(gate: Gate, admission: AdmissionControl, client: httpx.AsyncClient) -> None:
        first = asyncio.create_task(client.get("/a"))
        await settle()
        for probe in ("/healthz", "/readyz"):
            gate.opener(probe).set()
            assert (await client.get(probe)).status_code == 200
        gate.opener("/a").set()
        assert (await first).status_code == 200

    run(check, limit=1, max_queue=0)
