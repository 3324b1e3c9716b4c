"""Shared fixtures: one real Sail server for the session, and the gateway in front of it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from sailplane.compute.backend import InstanceHandle, InstanceSpec
from sailplane.compute.local import LocalSailBackend
from sailplane.gateway.spark_connect import (
    Claims,
    GatewayDenied,
    GatewayThread,
    Resolver,
    SparkConnectGateway,
    generate_self_signed_cert,
)
from sailplane.gateway.tokens import SigningKeys

SESSION = "SESSIONOK"
OTHER_SESSION = "SESSIONOTHER"
STARTING_SESSION = "SESSIONSTARTING"


@dataclass
class Activity:
    """What on_activity saw; the callback runs on the gateway's loop thread."""

    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, session_id: str) -> None:
        with self.lock:
            self.seen.append(session_id)

    def count(self, session_id: str) -> int:
        with self.lock:
            return self.seen.count(session_id)


@dataclass
class RunningGateway:
    port: int
    keys: SigningKeys
    activity: Activity
    upstream: InstanceHandle
    cert: Path | None = None
    methods: list[str] = field(default_factory=list)
    # The sessions the resolver knows: one routed to Sail, one refused, one still starting.
    session: str = SESSION
    other_session: str = OTHER_SESSION
    starting_session: str = STARTING_SESSION


@pytest.fixture(scope="package")
def sail_backend(tmp_path_factory: pytest.TempPathFactory) -> LocalSailBackend:
    return LocalSailBackend(tmp_path_factory.mktemp("gateway-compute"))


@pytest.fixture(scope="package")
def sail(sail_backend: LocalSailBackend) -> Iterator[InstanceHandle]:
    handle = asyncio.run(sail_backend.start(InstanceSpec(instance_id="GWSAIL1")))
    yield handle
    asyncio.run(sail_backend.stop(handle))
    assert not asyncio.run(sail_backend.find(handle))
    assert sail_backend.scan() == [], "a Sail process was left behind"


@pytest.fixture(scope="package")
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> SigningKeys:
    return SigningKeys.load_or_create(tmp_path_factory.mktemp("keys"))


def _resolver(upstream: InstanceHandle, methods: list[str]) -> Resolver:
    async def resolve(claims: Claims, method: str) -> str:
        methods.append(method)
        if claims["sid"] == SESSION:
            return upstream.address
        if claims["sid"] == STARTING_SESSION:
            raise GatewayDenied.unavailable(f"session {claims['sid']} is still starting")
        raise GatewayDenied(grpc.StatusCode.PERMISSION_DENIED, f"session {claims['sid']} is not yours")

    return resolve


def _run_gateway(upstream: InstanceHandle, keys: SigningKeys, cert_dir: Path | None) -> Iterator[RunningGateway]:
    activity = Activity()
    methods: list[str] = []
    cert = key = None
    if cert_dir is not None:
        cert, key = generate_self_signed_cert(cert_dir, ["localhost", "127.0.0.1"])
    gateway = SparkConnectGateway(keys, _resolver(upstream, methods), on_activity=activity, tls_cert=cert, tls_key=key)
    thread = GatewayThread(gateway)
    port = thread.start("127.0.0.1", 0)
    try:
        yield RunningGateway(port=port, keys=keys, activity=activity, upstream=upstream, cert=cert, methods=methods)
    finally:
        thread.stop()


@pytest.fixture(scope="package")
def gateway(sail: InstanceHandle, signing_keys: SigningKeys) -> Iterator[RunningGateway]:
    yield from _run_gateway(sail, signing_keys, None)


@pytest.fixture(scope="package")
def tls_gateway(
    sail: InstanceHandle, signing_keys: SigningKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    yield from _run_gateway(sail, signing_keys, tmp_path_factory.mktemp("tls"))
