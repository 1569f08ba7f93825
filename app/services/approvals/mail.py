"""Where approved emails go: an SMTP server (MAI_SMTP_URL) or the outbox table."""

from __future__ import annotations

import uuid

import aiosmtplib

from app.core.mail import SmtpMailer, parse_smtp_url
from app.core.resources import Resources
from app.models import OutboxEmail
from app.repositories.approvals import OutboxRepository
from graphs.tools.email import EmailDelivery, EmailDeliveryError, OutgoingEmail


class SmtpDelivery:
    """Sends each email through the SMTP server."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer

    async def deliver(self, email: OutgoingEmail) -> str:
        """Send it; a refused or unreachable server is a tool error the model can report."""
        try:
            await self.mailer.send(email.to, email.subject, email.body)
        except (aiosmtplib.SMTPException, OSError) as error:
            raise EmailDeliveryError(f"The email could not be sent: {error}") from error
        return "sent."


class OutboxDelivery:
    """Keeps each email in the outbox table (GET /api/v1/approvals/outbox, admins)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def deliver(self, email: OutgoingEmail) -> str:
        """Store it."""
        try:
            user_id: uuid.UUID | None = uuid.UUID(email.user_id)
        except ValueError:
            user_id = None
        async with self.resources.sessionmaker() as session:
            stored = await OutboxRepository(session).add(
                OutboxEmail(
                    user_id=user_id,
                    to=email.to,
                    subject=email.subject,
                    body=email.body,
                    created_at=self.resources.clock.now(),
                )
            )
            await session.commit()
        return f"queued in the outbox (id {stored.id}); no mail server is configured."


def email_delivery(resources: Resources) -> EmailDelivery:
    """SMTP when MAI_SMTP_URL is set, else the outbox."""
    settings = resources.settings
    if settings.smtp_url is not None:
        config = parse_smtp_url(settings.smtp_url.get_secret_value())
        return SmtpDelivery(SmtpMailer(config, settings.smtp_from))
    return OutboxDelivery(resources)
