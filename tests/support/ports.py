"""Loopback ports for servers that tests start in another process, where the bound socket cannot be handed over."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port below the kernel's ephemeral range, free when asked.

    Port 0 hands out ephemeral ports, the same ones outgoing connections take; the SQLite and PostgreSQL
    runs share this machine, so a port found that way was sometimes in use by the time the server bound it.
    """
    low, _ = ephemeral_range()
    floor = max(1024, low - 12000)
    for _ in range(200):
        port = random.randrange(floor, low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")
