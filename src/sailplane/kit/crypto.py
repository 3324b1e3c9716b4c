"""Secrets: random tokens, hashes for lookup, and encryption at rest for values we must read back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def random_token(prefix: str, nbytes: int = 32) -> str:
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def token_hash(token: str) -> str:
    """High-entropy tokens need no slow hash; SHA-256 lets us find them by an indexed lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Encryptor:
    """AES-256-GCM with a key derived from the configured secret; output is base64 text."""

    def __init__(self, secret: str) -> None:
        self._aes = AESGCM(hashlib.sha256(("sailplane-at-rest:" + secret).encode()).digest())

    def encrypt(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        return base64.urlsafe_b64encode(nonce + self._aes.encrypt(nonce, plaintext.encode(), None)).decode()

    def decrypt(self, ciphertext: str) -> str:
        raw = base64.urlsafe_b64decode(ciphertext.encode())
        return self._aes.decrypt(raw[:12], raw[12:], None).decode()
