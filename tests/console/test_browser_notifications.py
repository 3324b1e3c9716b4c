"""Notifications in the console, in a real browser against a real server whose webhooks may reach the loopback
receiver: a webhook channel added in the form (an address the API refuses first: its error, with its path, beside
the settings editor), its signing secret never shown; a test message sent from the page reaches the receiver,
signed, and the page shows it delivered; a rule sending an event type to the channel is added (none chosen first:
the API's error beside the events), disabled and deleted; the deliveries page lists the test by status. """

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.test_browser_notebooks import sign_in
from tests.notifications.conftest import notify_api, notify_server, receiver
from tests.runs.live import unique_key
from tests.support.actors import Actor, signup
from tests.support.receiver import Receiver
from tests.support.server import LiveServer
from tests.support.waiting import wait_until

__all__ = ["notify_api", "notify_server", "receiver"]
SECRET = "whsec-console-" + "0123456789abcdef0123456789"


def test_a_webhook_channel_tested_a_rule_added_and_deliveries_listed(
        notify_server: LiveServer, notify_api: str, receiver: Receiver, browser: Any, artifacts: Path) -> None:
    server = notify_server
    owner: Actor = signup(notify_api)
    path = f"/console-hook/{unique_key()}"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        sign_in(page, server.url, owner, "/notifications")
        expect(page.get_by_text("No channels yet")).to_be_visible()

        # An address the API refuses: beside the settings editor, with its path.
        form = page.get_by_role("form", name="Add channel")
        form.locator('input[name="name"]').fill("ops-hook")
        settings = form.get_by_label("Settings (JSON)")
        settings.fill(json.dumps({"url": "ftp://example.com/x"}))
        form.get_by_role("button", name="Add channel").click()
        refused = owner.post("/notifications/channels", json={"type": "webhook", "name": "x",
                                                              "config": {"url": "ftp://example.com/x"}})
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["details"]["fieldErrors"]["config.url"]
        expect(form.locator("#config-error")).to_have_text(f"config.url: {message}")
        assert owner.get("/notifications/channels").json()["total"] == 0

        settings.fill(json.dumps({"url": f"{receiver.url}{path}", "signingSecret": SECRET}))
        form.get_by_role("button", name="Add channel").click()
        row = page.get_by_role("table", name="Channels").locator("tbody tr", has_text="ops-hook")
        expect(row).to_contain_text("webhook")
        expect(row).to_contain_text("Organization")
        expect(row).to_contain_text("signingSecretSet: yes")
        assert SECRET not in page.content()
        [channel] = owner.get("/notifications/channels").json()["items"]

        # A test message from the page: received, signed; shown delivered, and the channel verified.
        row.get_by_role("button", name="Send test").click()
        expect(row.get_by_role("status")).to_contain_text("delivered (HTTP 200)")
        [received] = wait_until(lambda: receiver.at(path), timeout=10)
        assert received.signature_valid(SECRET)
        expect(row).not_to_contain_text("Not yet")
        page.screenshot(path=str(artifacts / "50-notification-channels.png"), full_page=True)

        # A rule: none of the events chosen is refused beside them; then one event to the channel.
        page.get_by_role("navigation", name="Notifications").get_by_role("link", name="Rules").click()
        expect(page.get_by_text("No rules yet")).to_be_visible()
        event = next(t for t in owner.get("/notifications/event-types").json()["items"] if not t["expandsTo"])
        rule_form = page.get_by_role("form", name="Add rule")
        rule_form.locator('input[name="name"]').fill("runs-to-ops")
        rule_form.get_by_label("ops-hook").check()
        rule_form.get_by_role("button", name="Add rule").click()
        none = owner.post("/notifications/rules", json={"name": "x", "eventTypes": [], "channelIds": [channel["id"]],
                                                        "scopeType": "organization"})
        assert none.status_code == 422, none.text
        expect(rule_form.locator("#eventTypes-error")).to_have_text(
            none.json()["error"]["details"]["fieldErrors"]["eventTypes"])
        rule_form.get_by_label(event["label"], exact=True).check()
        rule_form.get_by_role("button", name="Add rule").click()
        rule_row = page.get_by_role("table", name="Rules").locator("tbody tr", has_text="runs-to-ops")
        expect(rule_row).to_contain_text(event["label"])
        expect(rule_row).to_contain_text("ops-hook")
        expect(rule_row).to_contain_text("enabled")
        [rule] = owner.get("/notifications/rules").json()["items"]
        assert (rule["eventTypes"], rule["channelIds"], rule["scopeType"]) == (
            [event["key"]], [channel["id"]], "organization")
        rule_row.get_by_role("button", name="Disable").click()
        expect(rule_row).to_contain_text("disabled")
        assert owner.get(f"/notifications/rules/{rule['id']}").json()["item"]["enabled"] is False
        rule_row.get_by_role("button", name="Delete").click()
        expect(page.get_by_text("No rules yet")).to_be_visible()

        # Deliveries: the test, delivered; none failed.
        page.get_by_role("navigation", name="Notifications").get_by_role("link", name="Deliveries").click()
        delivered = page.get_by_role("table", name="Deliveries").locator("tbody tr")
        expect(delivered).to_have_count(1)
        expect(delivered).to_contain_text("ops-hook")
        expect(delivered).to_contain_text("delivered")
        expect(delivered).to_contain_text("HTTP 200")
        page.get_by_label("Status").select_option("failed")
        expect(page).to_have_url(f"{server.url}/notifications/deliveries?status=failed")
        expect(page.get_by_text("No deliveries with status failed")).to_be_visible()

        # The channel deleted from its page.
        page.get_by_role("navigation", name="Notifications").get_by_role("link", name="Channels").click()
        page.get_by_role("table", name="Channels").locator("tbody tr", has_text="ops-hook") \
            .get_by_role("button", name="Delete").click()
        expect(page.get_by_text("No channels yet")).to_be_visible()
        assert owner.get("/notifications/channels").json()["total"] == 0
    finally:
        context.close()
