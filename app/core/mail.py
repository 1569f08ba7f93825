"""Outgoing email over SMTP (aiosmtplib), configured by one MAI_SMTP_URL."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to send: host, port, credentials, TLS mode."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool


def parse_smtp_url(url: str) -> SmtpConfig:
    """Read smtp://user:pass@host:port (smtps:// for implicit TLS, ?starttls=true to upgrade).

    Raises ValueError with a message naming what is wrong.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must be an smtp:// or smtps:// URL such as smtp://user:pass@host:587")
    if not parts.hostname:
        raise ValueError("names no host (smtp://user:pass@host:port)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    implicit_tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    start_tls = (query.get("starttls", ["false"])[0].lower() in _TRUE) and not implicit_tls
    return SmtpConfig(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=implicit_tls,
        start_tls=start_tls,
    )


class SmtpMailer:
    """Sends plain-text emails through one SMTP server (a connection per email)."""

    def __init__(self, config: SmtpConfig, sender: str, timeout: float = 20.0) -> None:
        self.config = config
        self.sender = sender
        self.timeout = timeout

    async def send(self, to: str, subject: str, body: str) -> str:
        """Send one email; returns the server's reply. Raises aiosmtplib.SMTPException."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        config = self.config
        _, reply = await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.use_tls,
            start_tls=config.start_tls,
            timeout=self.timeout,
        )
        return reply
