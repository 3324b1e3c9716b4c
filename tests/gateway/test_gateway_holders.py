"""Holder checks: the gateway asks whether a token's holder may still use its session, caches the answer
for `ttl` seconds, refreshes it in the background so busy clients never wait, refuses within the ttl
once the answer turns, and cuts off the running calls of a refused holder.

A raw gRPC client against the small real upstream of the relay tests; the holder check is the injected
dependency the gateway is given (the server's own one asks the database: tests/sessions cover it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from sailplane.gateway.spark_connect import SERVICE, Claims, GatewayDenied, GatewayThread, SparkConnectGateway
from sailplane.gateway.tokens import SigningKeys
from tests.gateway.test_gateway_relay import Upstream

TTL = 2.0
SLACK = 0.5  # one poll interval and one call, on top of the ttl


class Holders:
    """The holder check given to the gateway: answers from a deny-list the test edits, optionally slowly or
    failing, and records each batch it is asked (it runs in the gateway's worker threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.denied: dict[str, GatewayDenied] = {}
        self.delay = 0.0
        self.slow: dict[str, float] = {}  # extra delay for batches asking about these subjects
        self.broken = False
        self.batches: list[list[str]] = []

    def __call__(self, batch: list[Claims]) -> list[GatewayDenied | None]:
        with self.lock:
            self.batches.append([c["sub"] for c in batch])
            delay, broken, denied = self.delay, self.broken, dict(self.denied)
            delay += max((self.slow.get(c["sub"], 0.0) for c in batch), default=0.0)
        time.sleep(delay)
        if broken:
            raise RuntimeError("the database is down")
        return [denied.get(c["sub"]) for c in batch]

    def asked_for(self, subject: str) -> int:
        with self.lock:
            return sum(batch.count(subject) for batch in self.batches)

    def deny(self, subject: str, denial: GatewayDenied) -> None:
        with self.lock:
            self.denied[subject] = denial


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream("holders")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    return SigningKeys.load_or_create(tmp_path_factory.mktemp("holder-keys"))


@pytest.fixture(scope="module")
def holders() -> Holders:
    return Holders()


@pytest.fixture(scope="module")
def gateway_port(upstream: Upstream, keys: SigningKeys, holders: Holders) -> Iterator[int]:
    async def resolve(claims: Claims, method: str) -> str:
        return f"127.0.0.1:{upstream.port}"

    thread = GatewayThread(SparkConnectGateway(keys, resolve, holder_check=holders, holder_ttl=TTL))
    port = thread.start()
    yield port
    thread.stop()


@pytest.fixture
def channel(gateway_port: int) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{gateway_port}") as ch:
        yield ch


def token(keys: SigningKeys, subject: str, via: str = "login:L1") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {keys.issue('S1', subject, 300, extra_claims={'via': via})}"),)


def config(channel: grpc.Channel, metadata: Any) -> bytes:
    result: bytes = channel.unary_unary(f"/{SERVICE}/Config")(b"abc", metadata=metadata, timeout=10)
    return result


def refused_within(channel: grpc.Channel, metadata: Any, since: float) -> grpc.RpcError:
    """The first refusal of a call. A call that was already running when the background re-check came
    back refused is cut with its connection (UNAVAILABLE, "Socket closed"): that is the gateway closing
    what the holder had open, not yet the refusal of a new call, so keep calling."""
    while True:
        try:
            config(channel, metadata)
        except grpc.RpcError as exc:
            assert time.monotonic() - since <= TTL + SLACK, "refused later than the ttl"
            if exc.code() == grpc.StatusCode.UNAVAILABLE and "closed" in (exc.details() or ""):
                continue
            return exc
        assert time.monotonic() - since <= TTL + SLACK, "still admitted after the ttl"
        time.sleep(0.05)


def test_one_check_serves_a_burst_and_every_token_of_the_holder(
        channel: grpc.Channel, keys: SigningKeys, holders: Holders) -> None:
    first, second = token(keys, "BURST"), token(keys, "BURST")
    started = time.monotonic()
    for _ in range(40):
        assert config(channel, first) == b"cba"
        assert config(channel, second) == b"cba"
    elapsed = time.monotonic() - started
    # One check for the first call, then at most one background refresh per half ttl.
    assert 1 <= holders.asked_for("BURST") <= 1 + int(elapsed / (TTL / 2)) + 1
    # Another credential of the same subject is another holder: checked on its own.
    config(channel, token(keys, "BURST", via="login:L2"))
    assert holders.asked_for("BURST") >= 2


def test_a_busy_holder_never_waits_for_a_slow_check(channel: grpc.Channel, keys: SigningKeys,
                                                    holders: Holders) -> None:
    metadata = token(keys, "BUSY")
    config(channel, metadata)  # the first call waits for the first check
    holders.delay = 0.4  # every later check is slow
    try:
        latencies = []
        until = time.monotonic() + 3 * TTL
        while time.monotonic() < until:
            started = time.monotonic()
            assert config(channel, metadata) == b"cba"
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
    finally:
        holders.delay = 0.0
    assert holders.asked_for("BUSY") >= 3  # refreshed in the background meanwhile...
    assert max(latencies) < 0.3, max(latencies)  # ...while no call waited for a 0.4 s check


def test_a_refused_holder_is_refused_within_the_ttl(channel: grpc.Channel, keys: SigningKeys,
                                                    holders: Holders) -> None:
    metadata, other = token(keys, "LEAVER"), token(keys, "STAYER")
    config(channel, metadata)
    config(channel, other)
    holders.deny("LEAVER", GatewayDenied.permission_denied("the holder left the team"))
    exc: Any = refused_within(channel, metadata, time.monotonic())
    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
    assert exc.details() == "the holder left the team"
    assert config(channel, other) == b"cba"
    # Refused from memory from now on, without asking again for every call.
    asked = holders.asked_for("LEAVER")
    for _ in range(5):
        with pytest.raises(grpc.RpcError):
            config(channel, metadata)
    assert holders.asked_for("LEAVER") <= asked + 1


def test_running_calls_of_a_refused_holder_are_cut_off(gateway_port: int, keys: SigningKeys, holders: Holders,
                                                       upstream: Upstream) -> None:
    outcomes: dict[str, Any] = {}

    def stream(subject: str, started: threading.Event) -> None:
        # Each stream on a connection of its own (gRPC would otherwise share one between the channels).
        with grpc.insecure_channel(f"127.0.0.1:{gateway_port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            call = ch.unary_stream(f"/{SERVICE}/ExecutePlan")(b"forever", metadata=token(keys, subject), timeout=60)
            try:
                for n, _ in enumerate(call):
                    if n == 3:
                        started.set()
                    if n > 100_000:  # pragma: no cover - a sanity stop
                        break
            except grpc.RpcError as exc:
                outcomes[subject] = (exc.code(), time.monotonic())

    leaver_started, stayer_started = threading.Event(), threading.Event()
    leaver = threading.Thread(target=stream, args=("STREAMER", leaver_started), daemon=True)
    stayer = threading.Thread(target=stream, args=("STREAMKEEPER", stayer_started), daemon=True)
    leaver.start()
    stayer.start()
    assert leaver_started.wait(10) and stayer_started.wait(10), outcomes
    upstream.cancelled.clear()
    denied_at = time.monotonic()
    holders.deny("STREAMER", GatewayDenied.unauthenticated("the login was revoked"))
    leaver.join(TTL + 5)
    assert not leaver.is_alive()
    code, ended = outcomes["STREAMER"]
    assert code == grpc.StatusCode.UNAVAILABLE  # its connection was closed under it
    assert ended - denied_at <= TTL + SLACK
    assert upstream.cancelled.wait(5)  # and the upstream saw the call go away
    assert stayer.is_alive() and "STREAMKEEPER" not in outcomes  # another holder's stream runs on
    holders.deny("STREAMKEEPER", GatewayDenied.unauthenticated("done"))
    stayer.join(TTL + 5)
    assert not stayer.is_alive()


def test_a_failing_check_refuses_with_unavailable(channel: grpc.Channel, keys: SigningKeys,
                                                  holders: Holders) -> None:
    metadata = token(keys, "UNLUCKY")
    holders.broken = True
    try:
        with pytest.raises(grpc.RpcError) as info:
            config(channel, metadata)
        error: Any = info.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "cannot be checked" in error.details()
    finally:
        holders.broken = False
    assert config(channel, metadata) == b"cba"  # not remembered: the next call checks again


def test_calls_reach_the_upstream_in_stream_order_whatever_order_their_checks_end(
        channel: grpc.Channel, keys: SigningKeys, holders: Holders) -> None:
    """Two holders on one connection: the first call waits for a slow check, the second is admitted from
    memory at once. HTTP/2 streams must be opened in order, so the second waits for the first."""
    warm, cold = token(keys, "WARM"), token(keys, "COLD")
    assert config(channel, warm) == b"cba"
    holders.slow["COLD"] = 0.5
    try:
        first = channel.unary_unary(f"/{SERVICE}/Config").future(b"one", metadata=cold, timeout=10)
        time.sleep(0.1)  # the first call's headers are at the gateway, its check under way
        second = channel.unary_unary(f"/{SERVICE}/Config").future(b"two", metadata=warm, timeout=10)
        assert second.result() == b"owt"
        assert first.result() == b"eno"
    finally:
        holders.slow.clear()
    assert config(channel, warm) == b"cba"  # and the connection is still fine
