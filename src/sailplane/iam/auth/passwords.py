"""Password hashing with argon2id, and the rules a new password must meet."""

from __future__ import annotations

import functools
import os

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from sailplane.kit.errors import invalid

# Test suites hash thousands of passwords; at RFC 9106's parameters (64 MiB, 3 passes, 4 lanes: ~0.1-0.2 s of CPU
# each) that was a large share of their run. This switch picks argon2-cffi's profile meant for tests; it is read
# once per process, and hashes made either way verify under both (a hash carries its own parameters).
INSECURE_FAST_HASHING = "SAILPLANE_INSECURE_FAST_PASSWORD_HASHING"


@functools.cache
def _hasher() -> PasswordHasher:
    if os.environ.get(INSECURE_FAST_HASHING, "") == "1":
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so unknown emails cost the same time."""
    return _hasher().hash("sailplane-timing-equalizer")


MIN_LENGTH = 10
MAX_LENGTH = 256


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise invalid(field, f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise invalid(field, f"must be at most {MAX_LENGTH} characters")
    if password.strip() == "" or len(set(password)) < 4:
        raise invalid(field, "is too simple")
