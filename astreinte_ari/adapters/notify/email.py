"""Email over SMTP (STARTTLS or implicit TLS, optional auth), voicemail attached."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from astreinte_ari.alerting.ports import (
    Acknowledge,
    AlertMessage,
    Delivery,
    NotifyError,
    Progress,
    Recipient,
)
from astreinte_ari.config.alerting import SmtpConfig

MAX_ATTACHMENT = 20 * 1024 * 1024  # bigger messages are linked, not attached


class EmailNotifier:
    channel = "email"

    def __init__(
        self,
        config: SmtpConfig,
        password: str | None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._config = config
        self._password = password
        self._tls = tls_context or ssl.create_default_context()

    async def send(
        self,
        to: Recipient,
        message: AlertMessage,
        acknowledge: Acknowledge | None = None,
        progress: Progress | None = None,
    ) -> Delivery:
        if not to.email:
            raise NotifyError(f"{to.person_id} has no email address")
        mail = self.build(to, message)
        try:
            await asyncio.to_thread(self._deliver, mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifyError(f"SMTP {self._config.host}:{self._config.port}: {exc}") from exc
        return Delivery(f"mailed to {to.email}")

    def build(self, to: Recipient, message: AlertMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._config.sender
        mail["To"] = to.email or ""
        mail["Subject"] = message.subject
        # RFC 5322 with an explicit zone (formatdate gave "-0000": "zone unknown").
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = make_msgid(domain="astreinte")
        lines = [message.text, ""]
        en = message.language == "en"  # that of the alert's line or shift rule
        if message.ack_url:
            confirm = message.kind in ("shift_start", "shift_cover")
            if en:
                what = "Confirm" if confirm else "Acknowledge"
            else:
                what = "Confirmer" if confirm else "Acquitter"
            lines.append(f"{what}: {message.ack_url}")
        if message.voicemail_url:
            lines.append(f"{'Voicemail' if en else 'Message vocal'}: {message.voicemail_url}")
        mail.set_content("\n".join(lines) + "\n")
        path = message.voicemail
        if path is not None and path.is_file() and path.stat().st_size <= MAX_ATTACHMENT:
            mail.add_attachment(
                path.read_bytes(),
                maintype="audio",
                subtype="wav",
                filename=f"message-{message.alert_id}.wav",
            )
        return mail

    def _deliver(self, mail: EmailMessage) -> None:
        cfg = self._config
        smtp_class = smtplib.SMTP_SSL if cfg.ssl else smtplib.SMTP
        kwargs = {"context": self._tls} if cfg.ssl else {}
        with smtp_class(cfg.host, cfg.port, timeout=cfg.timeout, **kwargs) as smtp:  # type: ignore[arg-type]
            smtp.ehlo()
            if cfg.starttls:
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, self._password or "")
            smtp.send_message(mail)
