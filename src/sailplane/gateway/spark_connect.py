"""Spark Connect gateway: admits each call by its session token and relays it to that session's Sail server.

The relay works on HTTP/2 frames (`relay.py`): request headers are decoded and checked, everything
else passes through unchanged, so any Spark Connect client/server version pair that talks to each
other directly also talks through the gateway, and status codes, details and trailers (including
`grpc-status-details-bin`, from which PySpark rebuilds AnalysisException and friends) reach the
client exactly as Sail sent them.

The gateway knows nothing about the database: an injected `resolver(claims, method)` says where a
session lives (or raises `GatewayDenied`), optionally answered at once by `resolve_now`, and
`on_activity`/`on_call_end(session_id)` tell the idle tracker when calls start and end. They run on
every call, so they must answer from memory. An optional `holder_check` says whether a token's holder
may still use its session; it may be slow (a database), so its answers are cached and refreshed in the
background (`access.py`), and a call only waits for it when its holder has no recent answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from sailplane.gateway.access import AccessCache, Holder, HolderCheck
from sailplane.gateway.denied import GatewayDenied
from sailplane.gateway.relay import Call, ClientConnection, Headers, Refusal
from sailplane.gateway.tokens import TokenError, TokenExpired
from sailplane.gateway.traffic import KNOWN_METHODS, Traffic
from sailplane.kit.loop_thread import LoopThread

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

SERVICE = "spark.connect.SparkConnectService"
SESSION_HEADER = "x-sailplane-session-id"
"""Optional metadata (`sc://host:port/;token=...;x-sailplane-session-id=<id>`): the session the client
means to reach. When present it must match the token's `sid`, so a token mixed up between sessions
fails loudly instead of silently running against the wrong session."""

TOKEN_HEADER = "x-sailplane-token"
"""Alternative to `authorization: Bearer` (`sc://host:port/;use_ssl=true;x-sailplane-token=<jwt>`).

PySpark's `token=` attaches the token through gRPC call credentials, whose per-call Python callback
costs the client several milliseconds; a plain connection-string parameter is sent as ordinary
metadata instead. Without use_ssl=true it travels in plaintext, so only do that on loopback."""

_SERVICE_PREFIX = f"/{SERVICE}/".encode()
_AUTHORIZATION, _TOKEN, _SESSION = b"authorization", TOKEN_HEADER.encode(), SESSION_HEADER.encode()
# Sail would gzip every response for a client that accepts it, which on the loopback hop costs more
# CPU than the bytes are worth (measured: 100 MB of Arrow pulls ~1.7x faster uncompressed).
_ACCEPT_ENCODING = b"grpc-accept-encoding"

Claims = dict[str, Any]
Resolver = Callable[[Claims, str], Awaitable[str]]
ResolveNow = Callable[[Claims, str], "str | None"]
ActivityCallback = Callable[[str], None]


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Claims: ...


class _TokenCache:
    """Verified tokens by their text, so a busy session costs one signature check, not one per call."""

    def __init__(self, verifier: TokenVerifier, max_entries: int = 4096):
        self._verifier = verifier
        self._max = max_entries
        self._claims: dict[str, Claims] = {}

    def verify(self, token: str) -> Claims:
        claims = self._claims.get(token)
        if claims is not None:
            if claims["exp"] > time.time():
                return claims
            del self._claims[token]
            raise TokenExpired("session token has expired")
        claims = self._verifier.verify(token)
        if len(self._claims) >= self._max:
            self._claims.clear()
        self._claims[token] = claims
        return claims


def _text(value: bytes) -> str:
    return value.decode(errors="replace")


class SparkConnectGateway:
    """The proxy server. Start it on an event loop with `await start(host, port)`."""

    def __init__(
        self,
        verifier: TokenVerifier,
        resolver: Resolver,
        *,
        resolve_now: ResolveNow | None = None,
        on_activity: ActivityCallback | None = None,
        on_call_end: ActivityCallback | None = None,
        holder_check: HolderCheck | None = None,
        holder_ttl: float = 5.0,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tracer: Tracer | None = None,
    ):
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both a certificate and a key")
        self._tokens = _TokenCache(verifier)
        self._access = AccessCache(holder_check, holder_ttl, self._holders_denied) if holder_check else None
        self._resolver = resolver
        self._resolve_now: ResolveNow | None = resolve_now or getattr(resolver, "now", None)
        self._on_activity = on_activity
        self._on_call_end = on_call_end
        self._tls = (Path(tls_cert), Path(tls_key)) if tls_cert and tls_key else None
        self._server: asyncio.Server | None = None
        self._connections: set[ClientConnection] = set()
        self.port: int | None = None
        self.traffic = Traffic()
        self._tracer = tracer
        self._span_kind: Any = None
        if tracer is not None:
            from opentelemetry.trace import SpanKind

            self._span_kind = SpanKind.SERVER

    @property
    def tls(self) -> bool:
        return self._tls is not None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self._tls is None:
            return None
        cert, key = self._tls
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["h2"])  # gRPC clients insist on HTTP/2 by ALPN
        return context

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind and serve; port 0 lets the OS choose. Returns the bound port (also `self.port`)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: ClientConnection(self), host, port, ssl=self._ssl_context())
        self._server = server
        if self._access is not None:
            self._access.start()
        self.port = server.sockets[0].getsockname()[1]
        log.info("Spark Connect gateway listening on %s:%s (%s)", host, self.port, "TLS" if self._tls else "plaintext")
        return self.port

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting connections and new calls (GOAWAY: clients take them to the gateway that replaces
        this one), let running calls finish for `grace` seconds, then close the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._connections):
            conn.drain()
        deadline = time.monotonic() + (grace or 0)
        while any(c.busy for c in self._connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self._connections):
            conn.close()
        if self._access is not None:
            await self._access.stop()
        await server.wait_closed()

    async def forget_upstream(self, target: str) -> None:
        """Close the connections relayed to a stopped instance (its port may be reused by another one)."""
        for conn in [c for c in self._connections if c.target == target]:
            conn.close()

    def _holders_denied(self, holders: list[Holder]) -> None:
        """Holders refused while their calls run: close the connections carrying those calls (their
        clients see UNAVAILABLE, and the next call is refused with the reason)."""
        denied = set(holders)
        for conn in [c for c in self._connections if c.carries(denied)]:
            log.info("closing a gateway connection: a call on it belongs to a token whose access was removed")
            conn.close()

    # -- relay.Admission: asked by connections, per call ---------------------------------------

    def connection_opened(self, conn: ClientConnection) -> None:
        self._connections.add(conn)

    def connection_closed(self, conn: ClientConnection) -> None:
        self._connections.discard(conn)

    def check_call(self, headers: Headers) -> Call:
        """Who is calling what: the service, the token and the session it names. Raises Refusal."""
        path = authorization = token_header = requested = None
        forward: Headers = []
        for name, value in headers:
            if name == b":path":
                path = value
            elif name == _AUTHORIZATION:
                authorization = value
                continue
            elif name == _TOKEN:
                token_header = value
                continue
            elif name == _SESSION:
                requested = _text(value)
                continue
            elif name == _ACCEPT_ENCODING:
                continue
            forward.append((name, value))
        if path is None or not path.startswith(_SERVICE_PREFIX):
            raise Refusal(grpc.StatusCode.UNIMPLEMENTED, f"the gateway only serves {SERVICE}, not {_text(path or b'')}")
        if authorization is None and token_header is not None:
            authorization = b"Bearer " + token_header
        if not authorization:
            raise Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing session token: connect with sc://HOST:PORT/;use_ssl=true;token=<session token>",
            )
        scheme, _, token = _text(authorization).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "authorization must be 'Bearer <session token>'")
        try:
            claims = self._tokens.verify(token.strip())
        except TokenError as exc:
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from exc
        session_id = claims["sid"]
        if requested is not None and requested != session_id:
            raise Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                f"session token was issued for session {session_id}, not {requested}",
            )
        method = _text(path[len(_SERVICE_PREFIX):])
        holder = self._access.holder(claims) if self._access is not None else None
        return Call(session_id=session_id, method=method, claims=claims, forward=forward, holder=holder)

    def resolve_now(self, call: Call) -> str | None:
        try:
            if call.holder is not None and self._access is not None and not self._access.admit_now(call.holder):
                return None
            if self._resolve_now is None:
                return None
            return self._resolve_now(call.claims, call.method)
        except Exception as exc:
            raise self._refusal(call, exc) from exc

    async def resolve(self, call: Call) -> str:
        try:
            if call.holder is not None and self._access is not None:
                await self._access.admit(call.holder)
            return await self._resolver(call.claims, call.method)
        except Exception as exc:
            raise self._refusal(call, exc) from exc

    @staticmethod
    def _refusal(call: Call, exc: Exception) -> Refusal:
        if isinstance(exc, GatewayDenied):
            return Refusal(exc.code, exc.message)
        log.error("resolver failed for session %s", call.session_id, exc_info=exc)
        return Refusal(grpc.StatusCode.UNAVAILABLE, f"session {call.session_id} cannot be reached now")

    def call_started(self, call: Call) -> None:
        method = call.method if call.method in KNOWN_METHODS else "other"
        self.traffic.calls[method] = self.traffic.calls.get(method, 0) + 1
        if self._tracer is not None:
            call.span = self._tracer.start_span(f"{SERVICE}/{method}", kind=self._span_kind, attributes={
                "rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": method,
                "sailplane.session_id": call.session_id, "sailplane.organization_id": str(call.claims.get("org", "")),
            })
        if call.holder is not None:
            call.holder.in_flight += 1
        if self._on_activity is not None:
            self._on_activity(call.session_id)

    def call_ended(self, call: Call) -> None:
        if call.span is not None:
            call.span.end()
        if call.holder is not None:
            call.holder.in_flight = max(0, call.holder.in_flight - 1)
        if self._on_call_end is not None:
            self._on_call_end(call.session_id)


def cached_resolver(resolver: Resolver, ttl_seconds: float = 2.0) -> Resolver:
    """Remember a session's upstream for a moment so a burst of calls costs one lookup.

    Denials are not cached: a session that just became ready is reachable on the next call. The
    returned resolver's `now(claims, method)` answers from the cache alone (None on a miss), which the
    gateway uses to admit a call without waiting.
    """
    cache: dict[str, tuple[float, str]] = {}

    def now(claims: Claims, method: str) -> str | None:
        hit = cache.get(claims["sid"])
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    async def resolve(claims: Claims, method: str) -> str:
        hit = now(claims, method)
        if hit is not None:
            return hit
        target = await resolver(claims, method)
        if len(cache) > 10_000:
            cache.clear()
        cache[claims["sid"]] = (time.monotonic() + ttl_seconds, target)
        return target

    resolve.now = now  # type: ignore[attr-defined]
    return resolve


class GatewayThread:
    """A gateway on a loop thread of its own (`kit.loop_thread`): for a sync caller, tests and benches."""

    def __init__(self, gateway: SparkConnectGateway):
        self.gateway = gateway
        self.loop = LoopThread("spark-connect-gateway")

    def start_loop(self) -> None:
        """Start the thread's event loop without binding the gateway yet (idempotent), so a caller can
        run its own set-up on the loop first (e.g. the session controller's reconciliation)."""
        self.loop.start()

    def start(self, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0) -> int:
        self.start_loop()
        return self.run(self.gateway.start(host, port), timeout=timeout)

    def run(self, coro: Awaitable[Any], *, timeout: float | None = None) -> Any:
        """Run a coroutine on the gateway's loop and wait for its result."""
        return self.loop.run(coro, timeout=timeout)

    def stop(self, grace: float = 2.0) -> None:
        with contextlib.suppress(RuntimeError):
            self.run(self.gateway.stop(grace), timeout=grace + 30)
        self.loop.stop()


def generate_self_signed_cert(
    directory: str | os.PathLike[str], hostnames: Sequence[str], *, days: int = 365
) -> tuple[Path, Path]:
    """A P-256 self-signed server certificate for the gateway's TLS; returns (cert path, key path).

    Meant for a single-machine install and tests: clients must trust the certificate itself
    (e.g. GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=cert.pem for PySpark).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hostnames:
        raise ValueError("at least one hostname is needed")
    names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / "gateway-cert.pem", out / "gateway-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path
