"""Outgoing email. SMTP when configured; otherwise each message is written to the data
directory (and its subject to the log) so a developer can follow links without a mail server."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from pathlib import Path

from sailplane.config import Settings
from sailplane.kit.ids import new_id

log = logging.getLogger("sailplane.notifications.mailer")


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outbox = settings.data_dir / "outbox"

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        if self.settings.smtp_host:
            self._send_smtp(message)
            log.info("mail sent via SMTP: %r", subject)
        else:
            path = self._write_outbox(message)
            log.info("mail written to %s (no SMTP configured): %r", path, subject)

    def _send_smtp(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host is not None
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password)
            smtp.send_message(message)

    def _write_outbox(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{new_id()}.eml"
        path.write_bytes(bytes(message))
        path.chmod(0o600)
        return path
