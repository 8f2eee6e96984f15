"""Email: SendGrid in production, a dev outbox of .eml files when no API key is set."""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from core.logging import fields
from core.settings import Settings

log = logging.getLogger("reactor.email")

EMAIL_REJECTED = "EmailRejected"

# For every workflow that sends email: SendGrid outages and rate limits are
# retried with backoff for up to 30 minutes; a rejection (4xx) is final.
EMAIL_START_TO_CLOSE = timedelta(seconds=30)
EMAIL_SCHEDULE_TO_CLOSE = timedelta(minutes=30)
EMAIL_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=[EMAIL_REJECTED],
)


class EmailMessage(BaseModel):
    """One email, fully composed. ``key`` identifies it (the workflow ID of its reaction)."""

    key: str
    to: str
    subject: str
    text: str
    html: str | None = None


class EmailReceipt(BaseModel):
    provider: Literal["sendgrid", "outbox"]
    # SendGrid's message id, or the outbox file's path.
    reference: str


def _outbox_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "__", key) + ".eml"


def _provider_message(body: bytes | str | None) -> str:
    """SendGrid's own error text from a response body (``{"errors": [{"message"}]}``)."""
    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        errors = json.loads(text).get("errors") or []
        messages = [e.get("message", "") for e in errors if isinstance(e, dict)]
        if messages:
            return "; ".join(m for m in messages if m)
    except (ValueError, AttributeError):
        pass
    return text[:500]


def _retry_after(headers: Any) -> timedelta | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return timedelta(seconds=max(1.0, float(value))) if value else None
    except ValueError:
        return None


class EmailActivities:
    """Holds the SendGrid client, built once at worker start."""

    def __init__(self, settings: Settings) -> None:
        self._from = settings.email_from
        self._outbox = settings.email_outbox_dir
        self._timeout = settings.sendgrid_timeout_seconds
        self._sendgrid: Any = None
        if settings.sendgrid_api_key is not None:
            from sendgrid import SendGridAPIClient

            self._sendgrid = SendGridAPIClient(
                settings.sendgrid_api_key.get_secret_value(), host=settings.sendgrid_host
            )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.send_email]

    @property
    def provider(self) -> Literal["sendgrid", "outbox"]:
        return "sendgrid" if self._sendgrid is not None else "outbox"

    @activity.defn(name="send_email")
    async def send_email(self, message: EmailMessage) -> EmailReceipt:
        """Send one email.

        SendGrid: 5xx, 429 (honouring Retry-After) and network errors raise a
        retryable error; any other 4xx raises the non-retryable ``EmailRejected``
        with SendGrid's message. Outbox: writes ``<key>.eml`` once; running it
        again for the same key changes nothing.
        """
        if self._sendgrid is None:
            path = await asyncio.to_thread(self._write_outbox, message)
            receipt = EmailReceipt(provider="outbox", reference=str(path))
        else:
            receipt = await self._send_sendgrid(message)
        log.info("email sent", extra=fields(key=message.key, provider=receipt.provider))
        return receipt

    def _write_outbox(self, message: EmailMessage) -> Path:
        self._outbox.mkdir(parents=True, exist_ok=True)
        path = self._outbox / _outbox_name(message.key)
        if path.exists():
            return path
        mail = email.message.EmailMessage()
        mail["From"] = self._from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate(localtime=False)
        mail["X-Reactor-Key"] = message.key
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        # Write then rename, so a crash never leaves half an email behind.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(bytes(mail))
        os.replace(tmp, path)
        return path

    async def _send_sendgrid(self, message: EmailMessage) -> EmailReceipt:
        from python_http_client.exceptions import HTTPError
        from sendgrid.helpers.mail import CustomArg, Mail

        mail = Mail(
            from_email=self._from,
            to_emails=message.to,
            subject=message.subject,
            plain_text_content=message.text,
            html_content=message.html,
        )
        mail.custom_arg = CustomArg("reactor_key", message.key)

        def post() -> Any:
            return self._sendgrid.client.mail.send.post(
                request_body=mail.get(), timeout=self._timeout
            )

        try:
            response = await asyncio.to_thread(post)
        except HTTPError as err:
            status = int(err.status_code)
            text = _provider_message(err.body)
            if status == 429:
                raise ApplicationError(
                    f"SendGrid 429 (rate limited): {text}",
                    next_retry_delay=_retry_after(err.headers),
                ) from None
            if 400 <= status < 500:
                raise ApplicationError(
                    f"SendGrid rejected the email: {status} {text}",
                    type=EMAIL_REJECTED,
                    non_retryable=True,
                ) from None
            raise ApplicationError(f"SendGrid error {status}: {text}") from None
        except OSError as err:  # connection refused, DNS, timeouts
            raise ApplicationError(f"SendGrid unreachable: {type(err).__name__}: {err}") from None
        message_id = response.headers.get("X-Message-Id", "") if response.headers else ""
        return EmailReceipt(provider="sendgrid", reference=message_id)
