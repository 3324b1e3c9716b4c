"""SSO is scoped: a login through an organization's identity provider acts in that organization only,
links only to accounts that organization already has as members, and never reaches the account-wide
settings of an account that also belongs elsewhere. Through the real OpenID provider; the attacker is an
organization admin who registers a provider they control (the test provider signs in anyone)."""

from __future__ import annotations

from typing import Any

import httpx

from sailplane.config import Settings
from tests.conftest import Mailbox
from tests.identity.test_email_flows import request_code
from tests.invites.test_invitations import invite
from tests.mfa.helpers import code_at, enrolled_user
from tests.sso.browser import sign_in_at_provider
from tests.sso.test_sso_login import auto_setup, callback_on_our_server, start
from tests.support.actors import PASSWORD, Actor, assert_error, signup, unique_email
from tests.support.world import create_team


def sso(api_url: str, settings: Settings, idp: dict[str, Any], subject: str) -> httpx.Response:
    """The whole sign-in at the provider as `subject` (its email is the subject when it holds an @)."""
    return callback_on_our_server(api_url, settings, sign_in_at_provider(start(api_url, idp["id"]),
                                                                         settings.public_url, subject))


def joined(owner: Actor, mailbox: Mailbox, member: Actor) -> None:
    """`member` accepts an invitation into `owner`'s organization with their own (password) login."""
    _, token = invite(owner, mailbox, member.email)
    r = member.post(f"/invites/{token}/accept")
    assert r.status_code == 200, r.text


def current_login_id(actor: Actor) -> str:
    return next(x["id"] for x in actor.get("/me/logins").json()["items"] if x["current"])


def test_a_login_through_one_organizations_provider_acts_only_in_that_organization(
    api_url: str, oidc_issuer: str, settings: Settings, mailbox: Mailbox
) -> None:
    victim = signup(api_url, email=unique_email("victim"))  # Owner of organization B
    team = create_team(victim, "Finance")
    attacker = signup(api_url)  # Owner of organization A, where the victim is also a member
    joined(attacker, mailbox, victim)
    idp = auto_setup(attacker, oidc_issuer)

    r = sso(api_url, settings, idp, victim.email or "")
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == victim.user_id  # linked: the victim is a member of A
    stolen = Actor(api_url, r.json()["token"])

    # Without a header it acts in A, never in the account's default organization (B).
    me = stolen.get("/me").json()
    assert me["organizationId"] == attacker.org_id and me["loginOrganizationId"] == attacker.org_id
    assert [o["id"] for o in me["organizations"]] == [attacker.org_id]
    assert me["defaultOrganizationId"] == attacker.org_id

    # Naming B: exactly what someone who is not a member of B gets.
    in_b, outsider = stolen.as_org(victim.org_id or ""), attacker.as_org(victim.org_id or "")
    for method, path, body in [("GET", "/me", None), ("GET", "/org/teams", None), ("GET", f"/org/teams/{team}", None),
                               ("GET", "/users", None), ("GET", "/org/audit-events", None),
                               ("POST", "/org/teams", {"name": "Exfiltration"}),
                               ("DELETE", f"/org/teams/{team}", None)]:
        got, expected = in_b.request(method, path, json=body), outsider.request(method, path, json=body)
        assert_error(got, 404, "organization_not_found")
        assert got.json()["error"]["message"] == expected.json()["error"]["message"]
    assert [t["team"]["id"] for t in victim.get("/org/teams").json()["items"]] == [team]

    # The victim's own password login still acts in both organizations, and so does a one-time code login.
    assert victim.get("/me").json()["organizationId"] == victim.org_id
    assert victim.as_org(attacker.org_id or "").get("/me").json()["organizationId"] == attacker.org_id
    code = request_code(api_url, mailbox, victim.email or "")
    r = httpx.post(f"{api_url}/auth/login/code/verify", json={"email": victim.email, "code": code})
    assert r.status_code == 200, r.text
    by_code = Actor(api_url, r.json()["token"])
    for org in (victim.org_id, attacker.org_id):
        assert by_code.as_org(org or "").get("/org/teams").status_code == 200
    assert len(by_code.get("/me").json()["organizations"]) == 2


def test_an_sso_login_cannot_reach_the_account_wide_settings_of_an_account_that_belongs_elsewhere(
    api_url: str, oidc_issuer: str, settings: Settings, mailbox: Mailbox
) -> None:
    victim = signup(api_url, email=unique_email("victim"))
    attacker = signup(api_url)
    joined(attacker, mailbox, victim)
    r = sso(api_url, settings, auto_setup(attacker, oidc_issuer), victim.email or "")
    assert r.status_code == 200, r.text
    stolen, stolen_login = Actor(api_url, r.json()["token"]), r.json()["loginId"]

    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/me/emails", {"email": unique_email("mallory")}),  # a new way to sign in
        ("GET", "/me/emails", None),
        ("POST", "/me/mfa/totp", None),  # an authenticator the attacker holds would lock the victim out
        ("GET", "/me/mfa", None),
        ("GET", "/me/trusted-devices", None),
        ("PATCH", "/me", {"displayName": "Mallory", "defaultOrganizationId": attacker.org_id}),
        ("POST", f"/users/{victim.user_id}/change-password",
         {"currentPassword": PASSWORD, "newPassword": "another-long-passphrase-42"}),
    ]
    for method, path, body in attempts:
        assert_error(stolen.request(method, path, json=body), 403, "organization_bound_login")
    me = victim.get("/me").json()
    assert me["user"]["displayName"] == "Test User" and me["defaultOrganizationId"] == victim.org_id
    assert [e["email"] for e in victim.get("/me/emails").json()["items"]] == [victim.email]
    assert victim.get("/me/mfa").json()["factors"] == []

    # Nor can it join the account to another organization.
    third = signup(api_url)
    _, token = invite(third, mailbox, victim.email)
    assert_error(stolen.post(f"/invites/{token}/accept"), 403, "organization_bound_login")

    # The SSO login sees and revokes only logins bound to its organization; the account's own logins see it.
    victim_login = current_login_id(victim)
    listed = stolen.get("/me/logins").json()["items"]
    assert [(x["id"], x["organizationId"], x["method"]) for x in listed] == [(stolen_login, attacker.org_id, "sso")]
    assert_error(stolen.delete(f"/me/logins/{victim_login}"), 404, "not_found")
    seen = {x["id"]: x["organizationId"] for x in victim.get("/me/logins").json()["items"]}
    assert seen[stolen_login] == attacker.org_id and seen[victim_login] is None
    assert victim.delete(f"/me/logins/{stolen_login}").status_code == 200
    assert_error(stolen.get("/me"), 401)
    assert victim.get("/me").status_code == 200


def test_the_mfa_step_after_sso_keeps_the_login_in_its_organization(
    api_url: str, oidc_issuer: str, settings: Settings, mailbox: Mailbox
) -> None:
    victim, secret, _codes = enrolled_user(api_url)
    attacker = signup(api_url)
    joined(attacker, mailbox, victim)
    r = sso(api_url, settings, auto_setup(attacker, oidc_issuer), victim.email or "")
    assert r.status_code == 200 and r.json()["mfaRequired"] is True, r.text
    done = httpx.post(f"{api_url}/auth/login/mfa", json={"challengeToken": r.json()["challengeToken"],
                                                          "code": code_at(secret, 0), "trustDevice": True})
    assert done.status_code == 200, done.text
    after_mfa = Actor(api_url, done.json()["token"])
    me = after_mfa.get("/me").json()
    assert me["organizationId"] == attacker.org_id and me["loginOrganizationId"] == attacker.org_id
    assert_error(after_mfa.as_org(victim.org_id or "").get("/org/teams"), 404, "organization_not_found")
    assert_error(after_mfa.post("/me/mfa/recovery-codes", json={"code": code_at(secret, 1)}), 403,
                 "organization_bound_login")


def test_a_provider_cannot_bring_back_a_member_its_organization_removed(
    api_url: str, oidc_issuer: str, settings: Settings, mailbox: Mailbox
) -> None:
    user = signup(api_url, email=unique_email("leaver"))  # keeps their own organization
    owner = signup(api_url)
    joined(owner, mailbox, user)
    idp = auto_setup(owner, oidc_issuer)
    r = sso(api_url, settings, idp, user.email or "")
    assert r.status_code == 200 and r.json()["userId"] == user.user_id, r.text  # linked: subject -> account
    member = next(u for u in owner.get("/users").json()["items"] if u["id"] == user.user_id)
    assert owner.delete(f"/org/members/{member['memberId']}").status_code == 200

    # Found by the linked subject, but no longer a member: refused, not silently made a member again.
    err = assert_error(sso(api_url, settings, idp, user.email or ""), 403, "sso_user_refused")
    assert "not a member" in err["message"]
    assert user.user_id not in [u["id"] for u in owner.get("/users").json()["items"]]
    assert [o["id"] for o in user.get("/me").json()["organizations"]] == [user.org_id]


def test_an_account_of_one_organization_manages_itself_through_its_sso_login(
    api_url: str, oidc_issuer: str, settings: Settings, mailbox: Mailbox
) -> None:
    owner = signup(api_url)
    subject = f"{unique_email('sso').split('@')[0]}@example.com"
    r = sso(api_url, settings, auto_setup(owner, oidc_issuer), subject)
    assert r.status_code == 200, r.text
    sso_user = Actor(api_url, r.json()["token"], email=subject)
    assert sso_user.patch("/me", json={"displayName": "Sam"}).json()["user"]["displayName"] == "Sam"
    secret = sso_user.post("/me/mfa/totp").json()["secret"]
    assert sso_user.post("/me/mfa/totp/verify", json={"code": code_at(secret, -1)}).status_code == 200

    # Once the account also belongs to another organization, the SSO login no longer reaches it.
    other = signup(api_url)
    code = request_code(api_url, mailbox, subject)
    r = httpx.post(f"{api_url}/auth/login/code/verify", json={"email": subject, "code": code})
    assert r.status_code == 200 and r.json()["mfaRequired"] is True, r.text
    r = httpx.post(f"{api_url}/auth/login/mfa", json={"challengeToken": r.json()["challengeToken"],
                                                       "code": code_at(secret, 0)})
    assert r.status_code == 200, r.text
    joined(other, mailbox, Actor(api_url, r.json()["token"], email=subject))
    assert_error(sso_user.patch("/me", json={"displayName": "Sam again"}), 403, "organization_bound_login")
    assert [o["id"] for o in sso_user.get("/me").json()["organizations"]] == [owner.org_id]
    assert len(Actor(api_url, r.json()["token"]).get("/me").json()["organizations"]) == 2
