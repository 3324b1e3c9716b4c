"""Forged ID tokens are refused. The real OpenID provider (tests/sso/op) runs the whole flow — login,
consent, code exchange with PKCE — and then, for subjects named "forge-<kind>-...", alters the ID token
it answers: another issuer, another audience, expired, wrong nonce (each signed with its real key), or a
signature by a key that is not in its JWKS, or no signature at all. Our server fetches the provider's
discovery document and JWKS over HTTP as in production; nothing of ours is mocked."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from sailplane.config import Settings
from tests.service_accounts.helpers import engine
from tests.sso.browser import sign_in_at_provider
from tests.sso.test_sso_login import auto_setup, callback_on_our_server, start
from tests.support.actors import PASSWORD, assert_error, signup, unique_email

FORGERIES = {
    "issuer": ("issuer", "another issuer"),
    "audience": ("audience", "another client"),
    "expired": ("expired", "expired"),
    "nonce": ("nonce", "nonce"),
    "badsig": ("signature", "signature"),
    "unknownkey": ("signature", "JWKS"),
    "none": ("algorithm", "algorithm"),
}


@pytest.mark.parametrize("kind", sorted(FORGERIES))
def test_a_forged_id_token_is_refused_creates_nothing_and_is_audited(
    kind: str, api_url: str, oidc_issuer: str, settings: Settings
) -> None:
    check, words = FORGERIES[kind]
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    subject = f"forge-{kind}-{unique_email('x').split('@')[0]}"
    email = f"{subject}@example.com"

    r = callback_on_our_server(api_url, settings, sign_in_at_provider(start(api_url, idp["id"]),
                                                                      settings.public_url, subject))
    err = assert_error(r, 401, "invalid_id_token")
    assert words in err["message"], err["message"]
    assert "token" not in r.json()

    # Nothing was created: no member, no user, no link to the provider's subject.
    assert [u["id"] for u in owner.get("/users").json()["items"]] == [owner.user_id]
    with engine(settings.database_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE email = :e"), {"e": email}).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM identity_links WHERE identity_provider_id = :i"),
                            {"i": idp["id"]}).scalar() == 0
    assert signup(api_url, email=email, password=PASSWORD).user_id  # the address is still free

    # The attempt is in the organization's audit log, with the check that failed.
    events = owner.get("/org/audit-events", params={"action": "auth.sso.login"}).json()["items"]
    assert [(e["outcome"], e["details"]) for e in events] == [
        ("failure", {"reason": "invalid_id_token", "check": check})]
    assert events[0]["resourceId"] == idp["id"]


def test_the_same_provider_signs_in_with_an_unaltered_token(
    api_url: str, oidc_issuer: str, settings: Settings
) -> None:
    """The control: the forging provider issues tokens our server accepts when it does not forge."""
    owner = signup(api_url)
    idp = auto_setup(owner, oidc_issuer)
    subject = f"honest-{unique_email('x').split('@')[0]}"
    r = callback_on_our_server(api_url, settings, sign_in_at_provider(start(api_url, idp["id"]),
                                                                      settings.public_url, subject))
    assert r.status_code == 200, r.text
    assert httpx.get(f"{api_url}/me", headers={"Authorization": f"Bearer {r.json()['token']}"}).status_code == 200
