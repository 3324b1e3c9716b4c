"""Time-ordered IDs in Crockford base32, so a list marker is simply the last ID seen."""

from __future__ import annotations

import re
import secrets
import time

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_PATTERN = r"^[A-Z0-9]{1,20}$"
ID_RE = re.compile(ID_PATTERN)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id() -> str:
    """20 characters: 48-bit millisecond time (10) + 50 random bits (10)."""
    return _encode(int(time.time() * 1000), 10) + _encode(secrets.randbits(50), 10)


def is_valid_id(value: str) -> bool:
    return bool(ID_RE.match(value))
