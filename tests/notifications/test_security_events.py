"""Security events from the real API actions, each to a rule's signed webhook once, naming what changed and who
did it, and never a secret: identity providers updated and deleted, API keys revoked (or deleted with their
service account), invitations sent and accepted (the token from the real email), users created, members removed
from the organization or a team, an identity provider set up by discovery and registration (a real OpenID
provider)."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

import pytest

from tests.conftest import Mailbox
from tests.data.helpers import build_org
from tests.notifications.helpers import signed_hook, signed_requests
from tests.runs.live import unique_key
from tests.support.actors import PASSWORD, Actor, unique_email
from tests.support.receiver import Receiver

TOKEN_RE = re.compile(r"/invites/([A-Z0-9]{20})\b")


@pytest.fixture()
def org(notify_api: str) -> Any:
    return build_org(notify_api)


def _bodies(receiver: Receiver, path: str, owner: Actor, hook: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The `count` webhooks' bodies, each of the organization's resource, in the order the events happened
    (deliveries of one tick are sent in parallel)."""
    bodies = sorted((r.json() for r in signed_requests(receiver, path, owner, hook, count)),
                    key=lambda b: str(b["occurredAt"]))
    assert all(b["resource"] == {"type": "organization", "id": owner.org_id} for b in bodies)
    return bodies


def _raw(receiver: Receiver, path: str) -> str:
    return " ".join(r.body.decode() for r in receiver.at(path))


def test_identity_provider_updates_and_its_deletion_notify_without_the_client_secret(org: Any,
                                                                                     receiver: Receiver) -> None:
    path, hook = signed_hook(org.owner, receiver, ["security.identity_provider_updated",
                                                   "security.identity_provider_deleted"])
    created = org.owner.post("/auth/idps", json={"name": "Corporate SSO", "providerType": "oidc",
                                                 "issuer": "https://sso.example.com", "clientId": "static-client",
                                                 "clientSecret": "first-client-secret-123"})
    assert created.status_code == 201, created.text  # created: not this rule's
    idp = created.json()["id"]
    r = org.admin.patch(f"/auth/idps/{idp}", json={"name": "Corporate SSO (EU)", "clientId": "eu-client"})
    assert r.status_code == 200, r.text
    r = org.owner.post(f"/auth/idps/{idp}/rotate-secret", json={"clientSecret": "rotated-client-secret-456"})
    assert r.status_code == 200, r.text
    assert org.owner.delete(f"/auth/idps/{idp}").status_code == 200

    renamed, rotated, deleted = _bodies(receiver, path, org.owner, hook, 3)
    assert renamed["type"] == rotated["type"] == "security.identity_provider_updated"
    assert renamed["data"]["changedFields"] == ["clientId", "name"]
    assert renamed["data"]["actorId"] == org.admin.member_id
    assert renamed["data"]["identityProvider"] == {"id": idp, "name": "Corporate SSO (EU)",
                                                   "issuer": "https://sso.example.com", "providerType": "oidc",
                                                   "emailDomains": []}
    assert rotated["data"]["changedFields"] == ["clientSecret"] and rotated["data"]["actorId"] == org.owner.member_id
    assert deleted["type"] == "security.identity_provider_deleted"
    assert deleted["data"]["identityProvider"]["id"] == idp
    assert deleted["data"]["identityProvider"]["name"] == "Corporate SSO (EU)"
    raw = _raw(receiver, path)
    assert "first-client-secret-123" not in raw and "rotated-client-secret-456" not in raw


def test_api_keys_revoked_or_deleted_with_their_account_notify_once_each(org: Any, receiver: Receiver) -> None:
    path, hook = signed_hook(org.owner, receiver, ["security.api_key_revoked"])
    account = org.owner.post("/org/service-accounts", json={"name": f"bot-{unique_key()}"})
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    keys = []
    for name in ("deploy", "backup"):
        r = org.owner.post(f"/org/service-accounts/{account_id}/api-keys", json={"name": name})
        assert r.status_code == 201, r.text
        keys.append(r.json())
    r = org.admin.delete(f"/org/service-accounts/{account_id}/api-keys/{keys[0]['id']}")
    assert r.status_code == 200, r.text
    assert org.owner.delete(f"/org/service-accounts/{account_id}").status_code == 200  # the revoked key: no 2nd

    revoked, deleted = _bodies(receiver, path, org.owner, hook, 2)
    assert revoked["type"] == deleted["type"] == "security.api_key_revoked"
    assert revoked["data"]["reason"] == "revoked" and revoked["data"]["actorId"] == org.admin.member_id
    assert revoked["data"]["apiKey"]["id"] == keys[0]["id"] and revoked["data"]["apiKey"]["name"] == "deploy"
    assert revoked["data"]["apiKey"]["serviceAccountId"] == account_id
    assert keys[0]["secret"].startswith(revoked["data"]["apiKey"]["prefix"])
    assert deleted["data"]["reason"] == "service_account_deleted"
    assert deleted["data"]["apiKey"]["id"] == keys[1]["id"] and deleted["data"]["actorId"] == org.owner.member_id
    raw = _raw(receiver, path)
    assert keys[0]["secret"] not in raw and keys[1]["secret"] not in raw


def _token(mailbox: Mailbox, email: str) -> str:
    message: Message = mailbox.wait_for(email, subject_contains="invited you")
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    match = TOKEN_RE.search(payload.decode())
    assert match, payload
    return match.group(1)


def test_an_invitation_sent_and_accepted_notify_without_its_token(org: Any, receiver: Receiver,
                                                                  mailbox: Mailbox) -> None:
    path, hook = signed_hook(org.owner, receiver, ["security.invitation_created", "security.invitation_accepted"])
    team_path, _ = signed_hook(org.owner, receiver, ["security.invitation_created"], "team",
                                       teamId=org.team2)  # the invitation is to team1: not this rule's
    email = unique_email("invitee")
    r = org.admin.post("/org/invites", json={"email": email, "roleIds": ["AUDITOR"], "teamIds": [org.team1]})
    assert r.status_code == 201, r.text
    invitation = r.json()
    token = _token(mailbox, email)
    accepted = Actor(org.owner.base_url).post(f"/invites/{token}/accept",
                                              json={"displayName": "Grace", "password": PASSWORD})
    assert accepted.status_code == 200, accepted.text

    sent, joined = _bodies(receiver, path, org.owner, hook, 2)
    assert sent["type"] == "security.invitation_created" and sent["data"]["actorId"] == org.admin.member_id
    assert sent["data"]["invitation"] == {"id": invitation["id"], "email": email.lower(), "roleIds": ["AUDITOR"],
                                          "teamIds": [org.team1], "expiresAt": invitation["expiresAt"]}
    assert joined["type"] == "security.invitation_accepted"
    assert joined["data"]["actorId"] == accepted.json()["memberId"]
    assert joined["data"]["invitation"] == {
        "id": invitation["id"], "email": email.lower(), "memberId": accepted.json()["memberId"],
        "userId": accepted.json()["userId"], "roleIds": ["AUDITOR"], "teamIds": [org.team1], "newAccount": True}
    raw = _raw(receiver, path)
    assert token not in raw and PASSWORD not in raw and accepted.json()["token"] not in raw
    assert receiver.at(team_path) == []  # after signed_requests' pause


def test_a_user_created_with_a_temporary_password_notifies_without_it(org: Any, receiver: Receiver) -> None:
    path, hook = signed_hook(org.owner, receiver, ["security.user_created"])
    email = unique_email("managed")
    r = org.admin.post("/users", json={"email": email, "displayName": "Managed Person", "roleIds": ["AUDITOR"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["temporaryPassword"]

    (body,) = _bodies(receiver, path, org.owner, hook, 1)
    assert body["type"] == "security.user_created" and body["data"]["actorId"] == org.admin.member_id
    user = body["data"]["user"]
    assert user["id"] == created["id"] and user["memberId"] == created["memberId"]
    assert user["email"] == email.lower() and user["displayName"] == "Managed Person"
    assert user["roleIds"] == ["AUDITOR"]
    assert created["temporaryPassword"] not in _raw(receiver, path)


def test_members_removed_from_the_organization_or_a_team_notify(org: Any, receiver: Receiver) -> None:
    path, hook = signed_hook(org.owner, receiver, ["security.member_removed", "security.role_changed"])
    team_path, team_hook = signed_hook(org.owner, receiver, ["security.member_removed"], "team", teamId=org.team2)
    r = org.owner.delete(f"/org/teams/{org.team1}/members/{org.viewer1.member_id}")
    assert r.status_code == 200, r.text
    r = org.admin.delete(f"/org/members/{org.dev2.member_id}")
    assert r.status_code == 200, r.text
    r = org.owner.delete(f"/users/{org.dev1.user_id}")
    assert r.status_code == 200, r.text

    left_team, removed, deleted = _bodies(receiver, path, org.owner, hook, 3)
    assert left_team["type"] == "security.role_changed"
    assert left_team["data"]["roleChange"] == {"memberId": org.viewer1.member_id, "scope": "team",
                                               "teamId": org.team1, "before": ["TEAMVIEWER"], "after": []}
    assert removed["type"] == deleted["type"] == "security.member_removed"
    assert removed["data"]["actorId"] == org.admin.member_id
    assert removed["data"]["member"] == {"id": org.dev2.member_id, "userId": org.dev2.user_id,
                                         "email": org.dev2.email.lower(), "roleIds": ["MEMBER"],
                                         "teamIds": [org.team2], "userDeleted": False}
    assert deleted["data"]["member"]["id"] == org.dev1.member_id and deleted["data"]["member"]["userDeleted"]
    assert deleted["data"]["member"]["teamIds"] == [org.team1]
    # team2's rule saw its member leave, and only that
    (team_body,) = _bodies(receiver, team_path, org.owner, team_hook, 1)
    assert team_body["data"]["member"]["id"] == org.dev2.member_id


def test_an_identity_provider_set_up_by_discovery_and_registration_notifies(org: Any, receiver: Receiver,
                                                                            oidc_issuer: str) -> None:
    path, hook = signed_hook(org.owner, receiver, ["security.identity_provider_created"])
    r = org.owner.post("/auth/idps/auto-setup", json={"name": "Auto SSO", "providerUrl": oidc_issuer,
                                                      "emailDomains": [f"{unique_key().lower()}.example"]})
    assert r.status_code == 201, r.text
    idp = r.json()
    assert idp["hasClientSecret"] is True

    (body,) = _bodies(receiver, path, org.owner, hook, 1)
    assert body["type"] == "security.identity_provider_created" and body["data"]["actorId"] == org.owner.member_id
    assert body["data"]["identityProvider"] == {"id": idp["id"], "name": "Auto SSO", "issuer": oidc_issuer,
                                                "providerType": idp["providerType"],
                                                "emailDomains": idp["emailDomains"]}
