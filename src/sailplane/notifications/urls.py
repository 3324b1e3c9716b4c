"""The SSRF guard for the URLs notifications are sent to: a channel must not make the server call its own network.

Checked when a channel is created or changed (422 naming the field), and again by every connection the sender
opens (`PinnedTransport`): the host is looked up once, its every address must be public, and the connection goes
to an address that was checked — never to a second lookup's answer, which a hostile DNS server could point at
the cloud metadata service or the control plane once the check had passed (DNS rebinding). Loopback is allowed
only with SAILPLANE_NOTIFICATIONS_ALLOW_LOOPBACK (tests' receivers); private, link-local (cloud metadata),
multicast and reserved addresses never are. Lookups use SAILPLANE_DNS_NAMESERVERS when set (kit.dns).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from sailplane.kit.dns import IpAddress, LookupFailed, addresses


class UnsafeUrl(ValueError):
    """Why a URL may not be called."""


def checked_addresses(host: str, *, allow_loopback: bool, nameservers: tuple[tuple[str, int], ...] = (),
                      timeout: float = 5.0) -> list[IpAddress]:
    """`host`'s addresses, looked up once; UnsafeUrl unless every one may be called."""
    try:
        found = addresses(host, nameservers, timeout)
    except LookupFailed as exc:
        raise UnsafeUrl(str(exc)) from exc
    for address in found:
        if address.is_loopback:
            if not allow_loopback:
                raise UnsafeUrl("must not point to a loopback address")
            continue
        if (address.is_private or address.is_link_local or address.is_multicast or address.is_reserved
                or address.is_unspecified or not address.is_global):
            raise UnsafeUrl("must point to a public address")
    return found


def check_url(url: str, *, allow_loopback: bool, resolve: bool = True, nameservers: tuple[tuple[str, int], ...] = (),
              timeout: float = 5.0) -> None:
    """Raise UnsafeUrl unless `url` is an http(s) URL whose host resolves to public addresses only (or
    loopback, when allowed). `http` is accepted only towards loopback."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise UnsafeUrl("is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("must be an https URL")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry credentials")
    if not resolve:
        return
    found = checked_addresses(parts.hostname, allow_loopback=allow_loopback, nameservers=nameservers,
                              timeout=timeout)
    if parts.scheme != "https" and not all(a.is_loopback for a in found):
        raise UnsafeUrl("must be an https URL")


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to a checked address of the host (TLS still verifies the certificate for the host's name: httpcore
    passes the name, not the address, as the server name)."""

    def __init__(self, allow_loopback: bool, nameservers: tuple[tuple[str, int], ...], timeout: float) -> None:
        self.allow_loopback = allow_loopback
        self.nameservers = nameservers
        self.timeout = timeout

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        found = checked_addresses(host, allow_loopback=self.allow_loopback, nameservers=self.nameservers,
                                  timeout=self.timeout)
        return super().connect_tcp(str(found[0]), port, timeout, local_address, socket_options)


class PinnedTransport(httpx.HTTPTransport):
    """httpx's transport whose every connection goes through the guard (`_PinnedBackend`). No proxy from the
    environment: a proxy would do the lookup the guard exists to do itself."""

    def __init__(self, *, allow_loopback: bool, nameservers: tuple[tuple[str, int], ...], timeout: float,
                 limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(allow_loopback, nameservers, timeout))
