"""Members and invitations in the console, in a real browser (Debian's Chromium) against a real server and a real
SMTP server: an admin invites a person in the members page (a bad email first: the API's field error beside the
field), resends the invitation (the first link stops working) and revokes another; the invitee opens the emailed
link, creates their account in the page (a too-short password first: the API's error beside it), lands in the
organization and sees only their team's things (teams, jobs, the teams they may start a session for); the admin
sees them as a member, changes their role (the last Owner's change is refused) and removes them. Someone with
an account signs in from the link and joins (acting in the new organization). Screenshots: the members page, the
invitation page, the invitee's teams and jobs."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.conftest import Mailbox
from tests.invites.test_invitations import body_of
from tests.jobs.helpers import make_job, sql_job
from tests.service_accounts.helpers import make_team
from tests.support.actors import PASSWORD, Actor, signup, unique_email
from tests.support.server import LiveServer

LINK_RE = re.compile(r"https?://\S+(/invites/[A-Z0-9]{20})\b")


def emailed_links(mailbox: Mailbox, email: str) -> list[str]:
    """The invitation links mailed to `email`, oldest first (their path: the test server's port is not the
    public URL's)."""
    links = []
    for message in mailbox.to(email):
        if "invited you" not in str(message["Subject"]):
            continue
        match = LINK_RE.search(body_of(message))
        assert match, body_of(message)
        links.append(match.group(1))
    return links


def wait_for_links(mailbox: Mailbox, email: str, count: int) -> list[str]:
    mailbox.wait_for(email, subject_contains="invited you")
    for _ in range(200):
        links = emailed_links(mailbox, email)
        if len(links) >= count:
            return links
        time.sleep(0.05)
    raise AssertionError(f"{count} invitation emails to {email} expected, got {emailed_links(mailbox, email)}")


def sign_in(page: Any, url: str, actor: Actor, path: str) -> None:
    assert actor.email is not None
    page.goto(f"{url}{path}")
    page.get_by_label("Email").fill(actor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{url}{path}")


def test_invite_in_the_page_accept_by_the_emailed_link_and_see_only_the_team(
        server: LiveServer, api_url: str, mailbox: Mailbox, browser: Any, artifacts: Path) -> None:
    owner = signup(api_url, name="Ada Admin", org_name="Harbour Analytics")
    alpha, beta = make_team(owner, "alpha-team"), make_team(owner, "beta-team")
    make_job(owner, sql_job("alpha-report", [alpha]))
    make_job(owner, sql_job("beta-report", [beta]))
    invitee, mistaken = unique_email("grace"), unique_email("mistake")

    admin_context = browser.new_context(viewport={"width": 1280, "height": 900})
    invitee_context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = admin_context.new_page()
        sign_in(page, server.url, owner, "/teams")
        # The admin pages are one entry of the main navigation, with their own tabs.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Organization").click()
        expect(page).to_have_url(f"{server.url}/members")
        tabs = page.get_by_role("navigation", name="Organization")
        expect(tabs.get_by_role("link")).to_have_text(["Members", "Service accounts", "Policies",
                                                        "Identity providers", "Audit log"])
        expect(tabs.get_by_role("link", name="Members")).to_have_class("active")
        expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
        members = page.get_by_role("table", name="Members")
        expect(members).to_contain_text("Ada Admin")
        expect(page.get_by_text("No pending invitations")).to_be_visible()  # the empty state says what to do

        # A bad email: the API's own words for the field, beside it; nothing is sent.
        form = page.get_by_role("form", name="Invite a member")
        refused = owner.post("/org/invites", json={"email": "not-an-email"})
        assert refused.status_code == 422
        form.get_by_label("Email").fill("not-an-email")
        form.get_by_role("button", name="Send invitation").click()
        expect(form.locator("#email-error")).to_have_text(refused.json()["error"]["details"]["fieldErrors"]["email"])
        expect(form.get_by_label("Email")).to_have_attribute("aria-invalid", "true")

        # The real invitation: Member of alpha-team.
        form.get_by_label("Email").fill(invitee)
        form.get_by_label("Role").select_option("MEMBER")
        form.get_by_label("Team").select_option(label="alpha-team")
        form.get_by_role("button", name="Send invitation").click()
        expect(form.get_by_role("status")).to_have_text(f"Invitation sent to {invitee}.")
        expect(form.locator("#email-error")).to_have_count(0)
        invitations = page.get_by_role("table", name="Invitations")
        row = invitations.locator("tbody tr", has_text=invitee)
        expect(row).to_contain_text("alpha-team")
        expect(row).to_contain_text("pending")
        first_link = wait_for_links(mailbox, invitee, 1)[0]

        # Resend: a second email with a new link; the first one stops working.
        row.get_by_role("button", name="Resend").click()
        expect(page.get_by_text(f"A new link was sent to {invitee}")).to_be_visible()
        links = wait_for_links(mailbox, invitee, 2)
        link = links[-1]
        assert link != first_link
        assert Actor(api_url).get(first_link).status_code == 404

        # A mistaken invitation, revoked after a confirmation: gone from the list and from the API.
        form.get_by_label("Email").fill(mistaken)
        form.get_by_label("Team").select_option("")
        form.get_by_role("button", name="Send invitation").click()
        wrong = invitations.locator("tbody tr", has_text=mistaken)
        expect(wrong).to_be_visible()
        wrong.get_by_role("button", name="Revoke").click()
        wrong.get_by_role("button", name="Yes, revoke").click()
        expect(wrong).to_have_count(0)
        pending = owner.get("/org/invites", params={"status": "pending"}).json()["items"]
        assert [i["email"] for i in pending] == [invitee]
        mistaken_link = wait_for_links(mailbox, mistaken, 1)[0]
        page.screenshot(path=str(artifacts / "20-members.png"), full_page=True)

        # The invitee opens the emailed link (a fresh browser, not signed in).
        other = invitee_context.new_page()
        other.goto(f"{server.url}{mistaken_link}")
        expect(other.get_by_role("alert")).to_contain_text("This invitation link is not valid")
        other.goto(f"{server.url}{link}")
        expect(other.get_by_role("heading", name="Join Harbour Analytics on Sailplane")).to_be_visible()
        expect(other.get_by_text(f"Ada Admin invited {invitee}")).to_be_visible()
        account = other.get_by_role("form", name="Create your account")
        account.get_by_label("Your name").fill("Grace Hopper")
        account.get_by_label("Password").fill("short")
        account.get_by_role("button", name="Create account and join").click()
        short = Actor(api_url).post(f"/invites/{urlsplit(link).path.rsplit('/', 1)[1]}/accept",
                                    json={"displayName": "Grace Hopper", "password": "short"})
        assert short.status_code == 422
        expect(account.locator("#password-error")).to_have_text(
            short.json()["error"]["details"]["fieldErrors"]["password"])
        other.screenshot(path=str(artifacts / "21-accept-invitation.png"), full_page=True)
        account.get_by_label("Password").fill(PASSWORD)
        account.get_by_role("button", name="Create account and join").click()

        # Signed in, in the organization: only alpha-team's things.
        expect(other).to_have_url(f"{server.url}/teams")
        # The Teams page, not the invitation page still on screen while it loads (that page names the organization
        # three times: the locator below then failed at once, a strict-mode violation).
        expect(other.get_by_role("heading", name="Teams")).to_be_visible()
        expect(other.get_by_text("Harbour Analytics")).to_be_visible()
        expect(other.locator("tbody tr", has_text="alpha-team")).to_be_visible()
        expect(other.locator("tbody tr")).to_have_count(1)
        expect(other.get_by_text("beta-team")).to_have_count(0)
        other.screenshot(path=str(artifacts / "22-invitee-teams.png"), full_page=True)
        other.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
        expect(other.get_by_role("link", name="alpha-report")).to_be_visible()
        expect(other.get_by_text("beta-report")).to_have_count(0)
        other.screenshot(path=str(artifacts / "23-invitee-jobs.png"), full_page=True)
        # Sessions are their own (none yet); they can start one for alpha-team only.
        other.get_by_role("navigation", name="Main").get_by_role("link", name="Sessions").click()
        expect(other.get_by_text("No sessions yet")).to_be_visible()
        team_choice = other.get_by_role("form", name="Create session").get_by_label("Team")
        expect(team_choice.locator("option")).to_have_text(["alpha-team"])

        # The link is used up; the admin sees the new member, in alpha-team, and the invitation accepted.
        other.goto(f"{server.url}{link}")
        expect(other.get_by_text("This invitation was already accepted")).to_be_visible()
        page.reload()
        expect(members.locator("tbody tr", has_text="Grace Hopper")).to_contain_text("alpha-team")
        expect(page.get_by_text("No pending invitations")).to_be_visible()
        page.get_by_label("Show").select_option("accepted")
        expect(invitations.locator("tbody tr", has_text=invitee)).to_contain_text("accepted")
        expect(invitations.locator("tbody tr", has_text=invitee).get_by_role("button")).to_have_count(0)

        # The member's role changes in the table; the last Owner's is refused, in the API's words; then removal.
        grace = members.locator("tbody tr", has_text="Grace Hopper")
        grace.get_by_label("Role of Grace Hopper").select_option("AUDITOR")
        expect(page.get_by_text("Grace Hopper is now")).to_be_visible()
        grace_id = grace.get_attribute("data-member-id")
        assert owner.get(f"/org/members/{grace_id}").json()["roleIds"] == ["AUDITOR"]
        last_owner = owner.put(f"/org/members/{owner.member_id}/roles", json={"roleIds": ["MEMBER"]})
        assert last_owner.status_code in (403, 409), last_owner.text
        me = members.locator("tbody tr", has_text="Ada Admin")
        me.get_by_label("Role of Ada Admin").select_option("MEMBER")
        expect(page.get_by_role("alert")).to_have_text(last_owner.json()["error"]["message"])
        expect(me.get_by_label("Role of Ada Admin")).to_have_value("OWNER")
        grace.get_by_role("button", name="Remove").click()
        grace.get_by_role("button", name="Yes, remove").click()
        expect(grace).to_have_count(0)
        assert owner.get(f"/org/members/{grace_id}").status_code == 404
    finally:
        admin_context.close()
        invitee_context.close()


def test_someone_with_an_account_signs_in_from_the_link_and_joins(
        server: LiveServer, api_url: str, mailbox: Mailbox, browser: Any, artifacts: Path) -> None:
    owner = signup(api_url, org_name="Second Harbour")
    team = make_team(owner, "harbour-team")
    existing = signup(api_url, org_name="Home Org")
    assert existing.email is not None
    r = owner.post("/org/invites", json={"email": existing.email, "teamIds": [team]})
    assert r.status_code == 201, r.text
    link = wait_for_links(mailbox, existing.email, 1)[0]
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.goto(f"{server.url}{link}")
        expect(page.get_by_role("heading", name="Join Second Harbour on Sailplane")).to_be_visible()
        page.get_by_role("link", name="Sign in").click()
        page.get_by_label("Email").fill(existing.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}{link}")  # back to the invitation after signing in
        page.get_by_role("button", name="Join Second Harbour").click()

        # In the new organization, with the switcher offering both.
        expect(page).to_have_url(f"{server.url}/teams")
        expect(page.locator("tbody tr", has_text="harbour-team")).to_be_visible()
        switcher = page.get_by_role("combobox", name="Organization")
        expect(switcher).to_have_value(owner.org_id or "")
        expect(switcher.locator("option")).to_have_text(["Home Org", "Second Harbour"])
        assert existing.as_org(owner.org_id or "").get("/me").json()["organizationId"] == owner.org_id

        # Signed in as someone else, a link says so instead of accepting.
        other = owner.post("/org/invites", json={"email": unique_email("someone")})
        assert other.status_code == 201
        other_link = wait_for_links(mailbox, other.json()["email"], 1)[0]
        page.goto(f"{server.url}{other_link}")
        expect(page.get_by_text(f"You are signed in as {existing.email}")).to_be_visible()
        expect(page.get_by_role("button", name="Join Second Harbour")).to_have_count(0)
    finally:
        context.close()
