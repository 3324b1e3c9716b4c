"""The mailer: real SMTP on loopback, and the development outbox when no SMTP is configured."""

from __future__ import annotations

from pathlib import Path

from sailplane.config import Settings
from sailplane.notifications.mailer.service import Mailer
from tests.conftest import Mailbox, make_settings


def test_smtp_delivery_reaches_the_server(settings: Settings, mailbox: Mailbox) -> None:
    Mailer(settings).send("smtp-check@example.com", "Hello over SMTP", "body text")
    msg = mailbox.wait_for("smtp-check@example.com")
    assert msg["Subject"] == "Hello over SMTP"
    assert "body text" in msg.get_payload()


def test_without_smtp_mail_is_written_to_the_outbox(tmp_path: Path, database_url: str) -> None:
    dev = make_settings(tmp_path, database_url, smtp_port=None)
    Mailer(dev).send("dev@example.com", "Dev mail", "follow this link")
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    text = files[0].read_text()
    assert "dev@example.com" in text and "follow this link" in text
    assert files[0].stat().st_mode & 0o077 == 0
