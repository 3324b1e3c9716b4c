"""A network's address range: what Sailplane accepts, and how a provisioned VPC is cut into subnets.

A VPC's CIDR must be a private (RFC 1918) IPv4 network between /16 and /24, written as its network address (no host
bits set): large enough for four subnets of EKS nodes and pods, small enough to be routable with others. Two
networks of one connection may not overlap (their VPCs could not be peered, nor their clusters reach each other).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sailplane.kit.errors import ApiError, invalid

FIELD = "config.cidr"
MIN_PREFIX, MAX_PREFIX = 16, 24
PRIVATE = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def parse(cidr: str) -> ipaddress.IPv4Network:
    """The network, or 422 naming `config.cidr` with what is wrong."""
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=True)
    except ValueError as exc:
        raise invalid(FIELD, f"{cidr!r} is not a valid network in CIDR notation ({exc})") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise invalid(FIELD, "must be an IPv4 network")
    if not MIN_PREFIX <= network.prefixlen <= MAX_PREFIX:
        raise invalid(FIELD, f"must be between /{MIN_PREFIX} and /{MAX_PREFIX} (got /{network.prefixlen})")
    if not any(network.subnet_of(block) for block in PRIVATE):
        raise invalid(FIELD, "must be in a private range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)")
    return network


def check_free(network: ipaddress.IPv4Network, others: Iterable[tuple[str, str]]) -> None:
    """409 when `network` overlaps one of `others` ((name, cidr) of the connection's other networks)."""
    for name, cidr in others:
        try:
            other = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if network.overlaps(other):
            raise ApiError(409, "network_cidr_overlap",
                           f"{network} overlaps {other} of the network {name!r} of this connection.",
                           field_errors={FIELD: f"overlaps {other} ({name})"})


def subnets(network: ipaddress.IPv4Network, zones: int) -> list[str]:
    """`zones` public then `zones` private subnets: the VPC cut into equal parts (a quarter each for two zones)."""
    bits = max((2 * zones - 1).bit_length(), 1)
    parts = list(network.subnets(prefixlen_diff=bits))
    return [str(p) for p in parts[:2 * zones]]


def parse_any(cidr: str) -> ipaddress.IPv4Network:
    """An adopted VPC's range as AWS reports it (any IPv4 network: it exists already)."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise invalid(FIELD, f"the VPC's range {cidr!r} is not an IPv4 network ({exc})") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise invalid(FIELD, "must be an IPv4 network")
    return network
