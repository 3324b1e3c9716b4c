"""Session proxy tokens: short-lived JWTs that let a Spark Connect client reach one session.

They are signed with an asymmetric key so the gateway (or anything else, via the JWKS) can check
them without sharing a secret with the API server. Ed25519 (`EdDSA`) is the default; an ES256
(P-256) PEM key from configuration works too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

AUDIENCE = "sailplane-spark-connect"
DEFAULT_KEY_FILENAME = "gateway-signing-key.pem"
REQUIRED_CLAIMS = ("sub", "sid", "iat", "exp", "jti", "aud")

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class TokenError(Exception):
    """A session token was rejected; the message is safe to show to the client."""


class TokenExpired(TokenError):
    pass


class TokenInvalid(TokenError):
    """Malformed, bad signature, unknown key or missing claims."""


class TokenWrongAudience(TokenError):
    pass


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(key: PrivateKey) -> dict[str, str]:
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def _thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint: a stable key id that changes exactly when the key does."""
    members = {k: jwk[k] for k in sorted(jwk) if k in {"crv", "kty", "x", "y"}}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


class SigningKeys:
    """The gateway's signing key: issues and verifies session tokens, publishes the public JWK set."""

    def __init__(self, private_key: PrivateKey, *, leeway_seconds: int = 5):
        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            self.algorithm = "EdDSA"
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(private_key.curve, ec.SECP256R1):
            self.algorithm = "ES256"
        else:
            raise ValueError("session token keys must be Ed25519 or EC P-256")
        self._private_key = private_key
        self._public_key = private_key.public_key()
        self._public_jwk = _public_jwk(private_key)
        self.kid = _thumbprint(self._public_jwk)
        self.leeway_seconds = leeway_seconds

    @classmethod
    def from_pem(cls, pem: bytes, **kwargs: Any) -> SigningKeys:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("session token keys must be Ed25519 or EC P-256")
        return cls(key, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> SigningKeys:
        return cls.from_pem(Path(path).read_bytes(), **kwargs)

    @classmethod
    def load_or_create(cls, data_dir: str | os.PathLike[str], **kwargs: Any) -> SigningKeys:
        """Keep one key in the data directory so tokens survive restarts; create it (0600) on first use."""
        path = Path(data_dir) / DEFAULT_KEY_FILENAME
        if path.exists():
            return cls.load(path, **kwargs)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Create with 0600 from the start (no window where the key is world-readable); O_EXCL so two
        # processes starting together cannot each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls.load(path, **kwargs)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return cls(key, **kwargs)

    @classmethod
    def from_config(
        cls, key_path: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str], **kwargs: Any
    ) -> SigningKeys:
        """An explicitly configured PEM key wins; otherwise the one kept in the data directory."""
        return cls.load(key_path, **kwargs) if key_path else cls.load_or_create(data_dir, **kwargs)

    def issue(
        self,
        session_id: str,
        subject: str,
        ttl_seconds: int,
        *,
        now: float | None = None,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = dict(extra_claims or {})
        claims.update(
            {
                "sub": subject,
                "sid": session_id,
                "iat": issued,
                "exp": issued + int(ttl_seconds),
                "jti": secrets.token_urlsafe(16),
                "aud": AUDIENCE,
            }
        )
        return jwt.encode(claims, self._private_key, algorithm=self.algorithm, headers={"kid": self.kid})

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid token; raises a TokenError subclass with a client-safe reason otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalid("session token is malformed") from exc
        if header.get("kid") not in (None, self.kid):
            raise TokenInvalid("session token was signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=[self.algorithm],
                audience=AUDIENCE,
                leeway=self.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("session token has expired") from exc
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError) as exc:
            if isinstance(exc, jwt.MissingRequiredClaimError) and exc.claim != "aud":
                raise TokenInvalid(f"session token lacks the {exc.claim!r} claim") from exc
            raise TokenWrongAudience(f"session token is not meant for {AUDIENCE}") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenInvalid("session token signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"session token is invalid: {exc}") from exc
        if not isinstance(claims.get("sid"), str) or not isinstance(claims.get("sub"), str):
            raise TokenInvalid("session token has malformed sid/sub claims")
        return claims

    def sign(self, claims: dict[str, Any], audience: str, ttl_seconds: int, *, now: float | None = None) -> str:
        """A token for another audience than the gateway's (notebook open URLs and their cookies): `claims`
        plus iat, exp, jti (unless given) and aud."""
        issued = int(time.time() if now is None else now)
        body = {"jti": secrets.token_urlsafe(16), **claims, "iat": issued, "exp": issued + int(ttl_seconds),
                "aud": audience}
        return jwt.encode(body, self._private_key, algorithm=self.algorithm, headers={"kid": self.kid})

    def decode(self, token: str, audience: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
        """Claims of a valid token of `audience` carrying `required` (besides iat, exp, jti, aud); raises a
        TokenError subclass otherwise."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") not in (None, self.kid):
                raise TokenInvalid("token was signed by an unknown key")
            claims: dict[str, Any] = jwt.decode(
                token, self._public_key, algorithms=[self.algorithm], audience=audience, leeway=self.leeway_seconds,
                options={"require": ["iat", "exp", "jti", "aud", *required]})
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenWrongAudience(f"token is not meant for {audience}") from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"token is invalid: {exc}") from exc
        return claims

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public key set to serve at /.well-known/jwks.json."""
        return {"keys": [{**self._public_jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}]}
