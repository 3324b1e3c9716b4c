"""Name lookups for names users give the server (SSO domain proofs, webhook hosts): through the configured
nameservers (SAILPLANE_DNS_NAMESERVERS) when there are any, else the system's, bounded by a timeout."""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # dnspython is imported by the first lookup through configured nameservers: ~2.5 MB
    import dns.resolver

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class LookupFailed(Exception):
    """The name has no address, or no answer could be had."""


def make_resolver(nameservers: tuple[tuple[str, int], ...], timeout: float) -> dns.resolver.Resolver:
    import dns.nameserver
    import dns.resolver

    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    resolver.timeout = min(2.0, timeout)
    return resolver


def addresses(host: str, nameservers: tuple[tuple[str, int], ...], timeout: float) -> list[IpAddress]:
    """Every address `host` has now (an IP literal is its own). IPv4-mapped IPv6 addresses are given as IPv4,
    so that a check of the address sees what a connection would reach."""
    try:
        found: list[IpAddress] = [ipaddress.ip_address(host.strip("[]").split("%", 1)[0])]
    except ValueError:
        found = _lookup(host, nameservers, timeout)
    return [a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a for a in found]


def _lookup(host: str, nameservers: tuple[tuple[str, int], ...], timeout: float) -> list[IpAddress]:
    if not nameservers:  # the system's resolver (/etc/hosts, NSS), as every other program on the host
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise LookupFailed(f"host {host!r} does not resolve") from exc
        return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    import dns.exception
    import dns.name

    resolver = make_resolver(nameservers, timeout)
    found: list[IpAddress] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(dns.name.from_text(host), rdtype, search=False, raise_on_no_answer=False)
        except (dns.exception.DNSException, UnicodeError) as exc:  # NXDOMAIN, no server answered, timeout
            raise LookupFailed(f"host {host!r} does not resolve") from exc
        found.extend(ipaddress.ip_address(record.address) for record in answer)
    if not found:
        raise LookupFailed(f"host {host!r} has no address")
    return found
