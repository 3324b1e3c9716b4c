"""Time-ordered IDs in Crockford base32, so a list marker is simply the last ID seen."""

from __future__ import annotations

import re
import secrets
import threading
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


_lock = threading.Lock()
_last = (0, 0)


def new_id() -> str:
    """20 characters: 48-bit millisecond time (10) + 50 random bits (10).

    Within one millisecond the random part only increases, so IDs made by one process sort in
    creation order (what "newest first" listings and markers rely on).
    """
    global _last
    with _lock:
        ms = int(time.time() * 1000)
        last_ms, last_rand = _last
        if ms <= last_ms:
            ms, rand = last_ms, last_rand + 1 + secrets.randbits(16)
            if rand >= 1 << 50:
                ms, rand = last_ms + 1, secrets.randbits(49)
        else:
            rand = secrets.randbits(49)
        _last = (ms, rand)
    return _encode(ms, 10) + _encode(rand, 10)


def is_valid_id(value: str) -> bool:
    return bool(ID_RE.match(value))
