"""Session proxy tokens: issue, verify, reject, publish."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sailplane.gateway.tokens import (
    AUDIENCE,
    DEFAULT_KEY_FILENAME,
    SigningKeys,
    TokenExpired,
    TokenInvalid,
    TokenWrongAudience,
)


def test_issue_and_verify(tmp_path: Path) -> None:
    keys = SigningKeys.load_or_create(tmp_path)
    token = keys.issue("SESS1", "USER1", 600)
    claims = keys.verify(token)
    assert claims["sid"] == "SESS1" and claims["sub"] == "USER1" and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 600
    assert claims["jti"] and claims["jti"] != keys.verify(keys.issue("SESS1", "USER1", 600))["jti"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": keys.kid, "typ": "JWT"}


def test_key_is_kept_private_and_reused(tmp_path: Path) -> None:
    first = SigningKeys.load_or_create(tmp_path)
    path = tmp_path / DEFAULT_KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SigningKeys.load_or_create(tmp_path)
    assert again.kid == first.kid
    assert again.verify(first.issue("S", "U", 60))["sid"] == "S"


def test_jwks_verifies_tokens(tmp_path: Path) -> None:
    keys = SigningKeys.load_or_create(tmp_path)
    jwks = keys.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [keys.kid]
    assert "d" not in jwks["keys"][0]  # never the private part
    public = jwt.PyJWKSet.from_dict(jwks)[keys.kid]
    claims = jwt.decode(keys.issue("S", "U", 60), public.key, algorithms=["EdDSA"], audience=AUDIENCE)
    assert claims["sid"] == "S"


def test_es256_key_from_configuration(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "es.pem").write_bytes(pem)
    keys = SigningKeys.from_config(tmp_path / "es.pem", tmp_path / "unused")
    assert keys.algorithm == "ES256"
    assert keys.verify(keys.issue("S", "U", 60))["sub"] == "U"
    public = jwt.PyJWKSet.from_dict(keys.jwks())[keys.kid]
    assert jwt.decode(keys.issue("S", "U", 60), public.key, algorithms=["ES256"], audience=AUDIENCE)
    assert not (tmp_path / "unused").exists()


def test_rejections(tmp_path: Path) -> None:
    keys = SigningKeys.load_or_create(tmp_path / "a")
    other = SigningKeys.load_or_create(tmp_path / "b")
    with pytest.raises(TokenExpired, match="expired"):
        keys.verify(keys.issue("S", "U", 60, now=time.time() - 3600))
    with pytest.raises(TokenInvalid, match="unknown key"):
        keys.verify(other.issue("S", "U", 60))
    now = int(time.time())
    base = {"sub": "U", "sid": "S", "iat": now, "exp": now + 60, "jti": "j"}
    private = serialization.load_pem_private_key((tmp_path / "a" / DEFAULT_KEY_FILENAME).read_bytes(), None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    wrong_aud = jwt.encode({**base, "aud": "someone-else"}, private, algorithm="EdDSA")
    with pytest.raises(TokenWrongAudience):
        keys.verify(wrong_aud)
    no_sid = jwt.encode({**base, "aud": AUDIENCE, "sid": None}, private, algorithm="EdDSA")
    with pytest.raises(TokenInvalid):
        keys.verify(no_sid)
    missing = {k: v for k, v in base.items() if k != "jti"} | {"aud": AUDIENCE}
    with pytest.raises(TokenInvalid, match="jti"):
        keys.verify(jwt.encode(missing, private, algorithm="EdDSA"))
    with pytest.raises(TokenInvalid, match="malformed"):
        keys.verify("garbage")
    none_alg = jwt.encode({**base, "aud": AUDIENCE}, "", algorithm="none")
    with pytest.raises(TokenInvalid):
        keys.verify(none_alg)
