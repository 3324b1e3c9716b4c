"""The SSRF guard for webhook URLs: a channel must not make the server call its own network.

Checked when a channel is created or changed (422 naming the field) and again before each send (DNS may have
changed since): the host's every address must be public. Loopback is allowed only with
SAILPLANE_NOTIFICATIONS_ALLOW_LOOPBACK (tests' receivers); private, link-local (cloud metadata), multicast and
reserved addresses never are.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    """Why a URL may not be called."""


def check_url(url: str, *, allow_loopback: bool, resolve: bool = True) -> None:
    """Raise UnsafeUrl unless `url` is an http(s) URL whose host resolves to public addresses only (or
    loopback, when allowed). `http` is accepted only towards loopback."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("must be an https URL")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry credentials")
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"host {parts.hostname!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback:
            if not allow_loopback:
                raise UnsafeUrl("must not point to a loopback address")
            continue
        if (address.is_private or address.is_link_local or address.is_multicast or address.is_reserved
                or address.is_unspecified or not address.is_global):
            raise UnsafeUrl("must point to a public address")
        if parts.scheme != "https":
            raise UnsafeUrl("must be an https URL")
