"""Sending a ticket reply by e-mail: SMTP when configured, else a local file outbox.

The outbox (MAIL_OUTBOX_DIR, default var/outbox) gets one RFC 5322 `.eml` file per reply,
created 0600 in a 0700 folder: it holds customers' addresses and staff's words. Any mail
client opens the files; tests read them. No web code here.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Protocol

from tandem.config import Settings
from tandem.db import utcnow


class MailError(Exception):
    """The e-mail could not be handed over; `message` is fit to show to staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Sent:
    transport: str  # "file" or "smtp"
    location: str | None  # the outbox file


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> Sent: ...


def compose(
    *,
    sender: str,
    sender_name: str,
    to: str,
    to_name: str | None,
    subject: str,
    body: str,
    reference: str,
) -> EmailMessage:
    """A plain-text reply; `reference` (e.g. "ticket-12") goes into headers for threading."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender))
    message["To"] = formataddr((to_name or "", to))
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    domain = sender.rsplit("@", 1)[-1]
    message["Message-ID"] = make_msgid(idstring=reference, domain=domain)
    message["X-Tandem-Ticket"] = reference
    message.set_content(body)
    return message


class FileOutbox:
    """Writes each message to `<folder>/<UTC time>-<reference>-<random>.eml`, mode 0600."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> Sent:
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            reference = str(message.get("X-Tandem-Ticket", "mail"))
            stamp = utcnow().strftime("%Y%m%dT%H%M%S")
            path = self.folder / f"{stamp}-{reference}-{uuid.uuid4().hex[:8]}.eml"
            # O_EXCL: never write through a file (or link) that is already there.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(message.as_bytes())
        except OSError as error:
            raise MailError(
                f"Could not write the e-mail to the outbox {self.folder}: {error.strerror}."
            ) from None
        return Sent("file", str(path))


class SmtpMailer:
    """Hands the message to an SMTP server (STARTTLS, implicit TLS or plain)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self.settings = settings

    def send(self, message: EmailMessage) -> Sent:
        s = self.settings
        host, port, timeout = str(s.smtp_host), s.smtp_port, s.smtp_timeout_seconds
        try:
            client: smtplib.SMTP
            if s.smtp_security == "ssl":
                context = ssl.create_default_context()
                client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
            else:
                client = smtplib.SMTP(host, port, timeout=timeout)
            with client:
                if s.smtp_security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.smtp_username is not None and s.smtp_password is not None:
                    client.login(s.smtp_username, s.smtp_password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise MailError(
                f"The mail server {host}:{port} did not take the e-mail ({error}). "
                "Nothing was sent; try again later."
            ) from None
        return Sent("smtp", None)


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return FileOutbox(settings.mail_outbox_dir)
