"""Managing invitations (listInvitations, resendInvitation, revokeInvitation) through HTTP and a real SMTP server:
the list pages and filters by state, resending mails a new link and the old one stops working, revoking makes the
link a 404, an accepted invitation can be neither, and other organizations' invitations are not found."""

from __future__ import annotations

import time

from tests.conftest import Mailbox
from tests.invites.test_invitations import TOKEN_RE, body_of, invite
from tests.service_accounts.helpers import make_team, make_user
from tests.support.actors import PASSWORD, Actor, assert_error, signup, unique_email


def test_list_pages_sorts_and_filters_by_state(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    emails = sorted(unique_email(f"list{i}") for i in range(3))
    created = [invite(owner, mailbox, email)[0] for email in reversed(emails)]
    _, token = invite(owner, mailbox)
    assert Actor(api_url).post(f"/invites/{token}/accept", json={"displayName": "In", "password": PASSWORD}) \
        .status_code == 200

    listed = owner.get("/org/invites", params={"sortBy": "email", "limit": 2}).json()
    assert listed["total"] == 4 and len(listed["items"]) == 2
    pending = owner.get("/org/invites", params={"status": "pending", "sortBy": "email"}).json()
    assert [i["email"] for i in pending["items"]] == emails and pending["total"] == 3
    newest = owner.get("/org/invites", params={"status": "pending", "sortDirection": "desc"}).json()["items"]
    assert [i["id"] for i in newest] == [c["id"] for c in reversed(created)]
    accepted = owner.get("/org/invites", params={"status": "accepted"}).json()["items"]
    assert [i["status"] for i in accepted] == ["accepted"]
    assert all(token not in str(i) for i in listed["items"] + accepted)
    assert_error(owner.get("/org/invites", params={"status": "lost"}), 400, "validation_failed")
    assert_error(owner.get("/org/invites", params={"sortBy": "token"}), 400, "invalid_sort_field")
    # Another organization's list has none of them; a plain member may not list.
    assert signup(api_url).get("/org/invites").json() == {"total": 0, "items": []}
    assert_error(make_user(owner).get("/org/invites"), 403)


def test_resend_mails_a_new_link_and_the_old_one_stops_working(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    team = make_team(owner)
    created, old = invite(owner, mailbox, teamIds=[team])
    before = len(mailbox.to(created["email"]))
    time.sleep(0.01)
    r = owner.post(f"/org/invites/{created['id']}/resend")
    assert r.status_code == 200, r.text
    resent = r.json()
    assert resent["id"] == created["id"] and resent["status"] == "pending"
    assert resent["expiresAt"] >= created["expiresAt"] and resent["teamIds"] == [team]
    deadline = time.time() + 10
    while len(mailbox.to(created["email"])) == before and time.time() < deadline:
        time.sleep(0.05)
    match = TOKEN_RE.search(body_of(mailbox.to(created["email"])[-1]))
    assert match and match.group(1) != old
    anon = Actor(api_url)
    assert_error(anon.get(f"/invites/{old}"), 404)
    r = anon.post(f"/invites/{match.group(1)}/accept", json={"displayName": "Resent", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert_error(owner.post(f"/org/invites/{created['id']}/resend"), 409, "invite_used")
    actions = [e["action"] for e in owner.get("/org/audit-events",
                                              params={"resourceId": created["id"]}).json()["items"]]
    assert actions == ["invitation.accept", "invitation.resend", "invitation.create"]


def test_revoke_makes_the_link_unknown(api_url: str, mailbox: Mailbox) -> None:
    owner, stranger = signup(api_url), signup(api_url)
    created, token = invite(owner, mailbox)
    assert_error(stranger.delete(f"/org/invites/{created['id']}"), 404)
    assert_error(stranger.post(f"/org/invites/{created['id']}/resend"), 404)
    assert_error(make_user(owner).delete(f"/org/invites/{created['id']}"), 403)
    r = owner.delete(f"/org/invites/{created['id']}")
    assert r.status_code == 200, r.text
    anon = Actor(api_url)
    assert_error(anon.get(f"/invites/{token}"), 404)
    assert_error(anon.post(f"/invites/{token}/accept", json={"displayName": "X", "password": PASSWORD}), 404)
    assert owner.get("/org/invites").json()["total"] == 0
    assert_error(owner.delete(f"/org/invites/{created['id']}"), 404)
    assert_error(owner.delete("/org/invites/not-an-id"), 400)

    accepted, token = invite(owner, mailbox)
    anon.post(f"/invites/{token}/accept", json={"displayName": "Y", "password": PASSWORD})
    assert_error(owner.delete(f"/org/invites/{accepted['id']}"), 409, "invite_used")


def test_resending_needs_what_inviting_needed(api_url: str, mailbox: Mailbox) -> None:
    owner = signup(api_url)
    member = make_user(owner)
    created, _ = invite(owner, mailbox, roleIds=["ADMIN"])
    owner.put(f"/org/policies/{member.user_id}", json={"permissions": ["CanInviteMembers"]})
    assert_error(member.post(f"/org/invites/{created['id']}/resend"), 403)
    plain, _ = invite(owner, mailbox)
    assert member.post(f"/org/invites/{plain['id']}/resend").status_code == 200
