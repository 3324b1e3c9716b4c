"""The relay itself, with a raw gRPC client against a small real upstream server that records what it saw.

The upstream speaks the Spark Connect service name with byte payloads, which lets these tests see
what PySpark cannot: forwarded metadata, trailers, cancellation reaching the upstream, every call kind.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sailplane.gateway.spark_connect import (
    SERVICE,
    Claims,
    GatewayDenied,
    GatewayThread,
    SparkConnectGateway,
    cached_resolver,
)
from sailplane.gateway.tokens import SigningKeys


class Upstream:
    """A real grpc.aio server on its own loop thread; handlers record into thread-safe fields."""

    def __init__(self, label: str = "one") -> None:
        self.label = label
        self.seen_metadata: dict[str, tuple[tuple[str, Any], ...]] = {}
        self.cancelled = threading.Event()
        self.stream_started = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: grpc.aio.Server | None = None
        self.port = 0

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        self.server = grpc.aio.server(
            options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        )
        handlers = {
            "Config": grpc.unary_unary_rpc_method_handler(self.config),
            "AnalyzePlan": grpc.unary_unary_rpc_method_handler(self.analyze),
            "ExecutePlan": grpc.unary_stream_rpc_method_handler(self.execute),
            "AddArtifacts": grpc.stream_unary_rpc_method_handler(self.add_artifacts),
            "SomeFutureMethod": grpc.stream_stream_rpc_method_handler(self.future_method),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()

    def stop(self) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()

    def _record(self, name: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.seen_metadata[name] = tuple(context.invocation_metadata() or ())

    async def config(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self._record("Config", context)
        await context.send_initial_metadata((("x-initial", "hello"),))
        context.set_trailing_metadata(
            (("x-trailer", "t1"), ("x-blob-bin", b"\x00\xffbin"), ("x-upstream", self.label))
        )
        return request[::-1]

    async def analyze(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        info = error_details_pb2.ErrorInfo(reason="org.apache.spark.sql.AnalysisException", domain="org.apache.spark")
        detail = status_pb2.Status(code=code_pb2.INTERNAL, message="[BAD_PLAN] the plan is bad: é")
        detail.details.add().Pack(info)
        await context.abort_with_status(rpc_status.to_status(detail))
        raise AssertionError("unreachable")

    async def execute(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        self._record("ExecutePlan", context)
        if request.startswith(b"fail-after-"):
            for i in range(int(request.removeprefix(b"fail-after-"))):
                yield b"m%d" % i
            await context.abort(grpc.StatusCode.ABORTED, "stream broke", (("x-why", "test"),))
        count = int(request.decode()) if request != b"forever" else None
        i = 0
        try:
            while count is None or i < count:
                yield i.to_bytes(4, "big") * 1024
                i += 1
                if count is None:
                    self.stream_started.set()
                    await asyncio.sleep(0.01)
        finally:
            if count is None:  # an endless stream only ends when its call is cancelled or times out
                self.cancelled.set()
        context.set_trailing_metadata((("x-count", str(i)),))

    async def add_artifacts(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        chunks = [chunk async for chunk in requests]
        return b"%d:" % len(chunks) + b"".join(chunks)

    async def future_method(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        async for chunk in requests:
            yield chunk.upper()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second_upstream() -> Iterator[Upstream]:
    server = Upstream("two")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    return SigningKeys.load_or_create(tmp_path_factory.mktemp("relay-keys"))


@pytest.fixture(scope="module")
def relay(upstream: Upstream, second_upstream: Upstream, keys: SigningKeys) -> Iterator[int]:
    lookups: list[str] = []

    async def resolve(claims: Claims, method: str) -> str:
        lookups.append(claims["sid"])
        if claims["sid"] == "STARTING":
            raise GatewayDenied.unavailable("session STARTING is not ready yet")
        if claims["sid"] == "BROKEN":
            raise RuntimeError("database is down")
        if claims["sid"].startswith("TWO"):
            return f"127.0.0.1:{second_upstream.port}"
        return f"127.0.0.1:{upstream.port}"

    thread = GatewayThread(SparkConnectGateway(keys, cached_resolver(resolve, ttl_seconds=60)))
    port = thread.start()
    yield port
    thread.stop()


@pytest.fixture
def channel(relay: int) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{relay}") as ch:
        yield ch


def bearer(keys: SigningKeys, sid: str = "S1") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {keys.issue(sid, 'U1', 300)}"),)


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


def test_unary_relays_payload_metadata_and_trailers(
    channel: grpc.Channel, keys: SigningKeys, upstream: Upstream
) -> None:
    call = channel.unary_unary(method("Config"))
    response, info = call.with_call(b"abc", metadata=(*bearer(keys), ("x-custom", "v")), timeout=10)
    assert response == b"cba"
    assert ("x-initial", "hello") in tuple(info.initial_metadata())
    trailers = tuple(info.trailing_metadata())
    assert ("x-trailer", "t1") in trailers
    assert ("x-blob-bin", b"\x00\xffbin") in trailers
    forwarded = dict(upstream.seen_metadata["Config"])
    assert forwarded.get("x-custom") == "v"
    assert "authorization" not in forwarded


def test_error_status_and_details_relayed_unchanged(channel: grpc.Channel, keys: SigningKeys) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method("AnalyzePlan"))(b"", metadata=bearer(keys), timeout=10)
    error: Any = info.value
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "[BAD_PLAN] the plan is bad: é"
    status = rpc_status.from_call(error)  # checks code and message against the call, as PySpark does
    assert status is not None
    unpacked = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(unpacked)
    assert unpacked.reason == "org.apache.spark.sql.AnalysisException"


def test_server_streaming(channel: grpc.Channel, keys: SigningKeys) -> None:
    call = channel.unary_stream(method("ExecutePlan"))(b"50", metadata=bearer(keys), timeout=10)
    messages = list(call)
    assert messages == [i.to_bytes(4, "big") * 1024 for i in range(50)]
    assert ("x-count", "50") in tuple(call.trailing_metadata())


def test_error_in_the_middle_of_a_stream(channel: grpc.Channel, keys: SigningKeys) -> None:
    call = channel.unary_stream(method("ExecutePlan"))(b"fail-after-3", metadata=bearer(keys), timeout=10)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for message in call:
            received.append(message)
    assert received == [b"m0", b"m1", b"m2"]
    error: Any = info.value
    assert error.code() == grpc.StatusCode.ABORTED
    assert error.details() == "stream broke"
    assert ("x-why", "test") in tuple(error.trailing_metadata())


def test_client_streaming(channel: grpc.Channel, keys: SigningKeys) -> None:
    call = channel.stream_unary(method("AddArtifacts"))
    assert call(iter([b"a", b"bb", b"ccc"]), metadata=bearer(keys), timeout=10) == b"3:abbccc"


def test_unknown_method_of_the_service_is_relayed(channel: grpc.Channel, keys: SigningKeys) -> None:
    call = channel.stream_stream(method("SomeFutureMethod"))
    assert list(call(iter([b"x", b"y"]), metadata=bearer(keys), timeout=10)) == [b"X", b"Y"]


def test_other_services_are_unimplemented(channel: grpc.Channel, keys: SigningKeys) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/other.Service/Method")(b"", metadata=bearer(keys), timeout=10)
    error: Any = info.value
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_cancellation_reaches_upstream(channel: grpc.Channel, keys: SigningKeys, upstream: Upstream) -> None:
    upstream.cancelled.clear()
    upstream.stream_started.clear()
    call = channel.unary_stream(method("ExecutePlan"))(b"forever", metadata=bearer(keys), timeout=60)
    next(call)
    assert upstream.stream_started.wait(10)
    call.cancel()
    assert upstream.cancelled.wait(10), "upstream call was not cancelled"


def test_deadline_propagates(channel: grpc.Channel, keys: SigningKeys, upstream: Upstream) -> None:
    upstream.cancelled.clear()
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        list(channel.unary_stream(method("ExecutePlan"))(b"forever", metadata=bearer(keys), timeout=0.5))
    error: Any = info.value
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert upstream.cancelled.wait(10)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("sid", "code", "fragment"),
    [
        ("STARTING", grpc.StatusCode.UNAVAILABLE, "not ready yet"),
        ("BROKEN", grpc.StatusCode.UNAVAILABLE, "cannot be reached now"),
    ],
)
def test_resolver_outcomes(
    channel: grpc.Channel, keys: SigningKeys, sid: str, code: grpc.StatusCode, fragment: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method("Config"))(b"", metadata=bearer(keys, sid), timeout=10)
    error: Any = info.value
    assert error.code() == code
    assert fragment in error.details()


def test_bad_authorization_header(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method("Config"))(b"", metadata=(("authorization", "Basic abc"),), timeout=10)
    error: Any = info.value
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in error.details()


def test_large_messages(relay: int, keys: SigningKeys) -> None:
    payload = bytes(range(256)) * (40 * 1024 * 1024 // 256)  # 40 MB, over gRPC's 4 MB default
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{relay}", options=options) as big:
        call = big.unary_unary(method("Config"))
        assert call(payload, metadata=bearer(keys), timeout=60) == payload[::-1]


def _upstream_of(channel: grpc.Channel, keys: SigningKeys, sid: str) -> str:
    _, info = channel.unary_unary(method("Config")).with_call(b"x", metadata=bearer(keys, sid), timeout=10)
    return dict(info.trailing_metadata())["x-upstream"]


def test_sessions_on_other_servers_share_a_client_connection(relay: int, keys: SigningKeys) -> None:
    """PySpark puts all sessions of a process on one connection when the token is plain metadata: each
    call must still reach its own session's server, with no error the client can see."""
    with grpc.insecure_channel(f"127.0.0.1:{relay}") as ch:
        for _ in range(5):
            assert _upstream_of(ch, keys, "S1") == "one"
            assert _upstream_of(ch, keys, "TWO1") == "two"
            assert _upstream_of(ch, keys, "S2") == "one"  # another session on the same server


def test_call_running_on_a_connection_survives_a_switch(relay: int, keys: SigningKeys, upstream: Upstream) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{relay}") as ch:
        upstream.stream_started.clear()
        stream = ch.unary_stream(method("ExecutePlan"))(b"forever", metadata=bearer(keys, "S1"), timeout=30)
        first = next(stream)
        assert upstream.stream_started.wait(10)
        assert _upstream_of(ch, keys, "TWO1") == "two"  # moves the channel to a new connection
        assert next(stream) != first  # the running stream goes on where it started
        stream.cancel()


def _until_closed(port: int, payload: bytes) -> bytes:
    """What the gateway sends before it closes the connection (a socket timeout fails the test)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not HTTP/2
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # preface, SETTINGS,
    + b"\x00\x00\x04\x01\x05\x00\x00\x00\x01" + b"\xff\xff\xff\xff",  # then HEADERS that are not HPACK
])
def test_garbage_closes_only_its_own_connection(relay: int, keys: SigningKeys, payload: bytes) -> None:
    # Only the gateway's opening SETTINGS (and an ACK of the client's), nothing from an upstream.
    assert _until_closed(relay, payload).startswith(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    with grpc.insecure_channel(f"127.0.0.1:{relay}") as ch:
        assert ch.unary_unary(method("Config"))(b"ok", metadata=bearer(keys), timeout=10) == b"ko"
