"""Email: templates rendered with Jinja2, sent through SendGrid, or written to a dev outbox.

Each email kind (``welcome``, ``booking_confirmation``, ``support_alert``, ...) has
built-in templates in ``activities/templates/email/``: ``<kind>.subject.txt``,
``<kind>.txt`` and ``<kind>.html``. A file of the same name in
``EMAIL_TEMPLATES_DIR`` overrides the built-in one. With
``SENDGRID_TEMPLATE_<KIND>`` set, SendGrid renders its dynamic template with the
same data instead.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.policy import Delivery, invalid_input, raise_for_status, unreachable
from core.logging import activity_fields
from core.settings import Settings

log = logging.getLogger("reactor.email")

BUILT_IN_TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"


class EmailRequest(BaseModel):
    """One email to send. ``key`` identifies it (the workflow ID of its reaction);
    ``data`` fills the kind's template (missing keys render as nothing). The
    recipient is ``to``, or for ``recipient="support"`` the SUPPORT_EMAIL address."""

    key: str
    kind: str
    to: str | None = None
    recipient: Literal["guest", "support"] = "guest"
    data: dict[str, Any] = {}


class RenderedEmail(BaseModel):
    subject: str
    text: str
    html: str


def _outbox_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "__", key) + ".eml"


def local_day(value: Any, zone: str = "UTC") -> date | None:
    """The date a stay's arrival or departure falls on at the property (IANA ``zone``).

    An ISO date alone is that local date already; an instant (an ISO string or a
    datetime, UTC when it has no offset) is the date the property's clocks show then.
    """
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(ZoneInfo(zone)).date()
    if isinstance(value, date):
        return value
    return None


# The values of an email's data that are days of the stay.
STAY_DAYS = ("arrival", "departure")


def in_local_days(data: dict[str, Any], zone: str) -> dict[str, Any]:
    """The data with the stay's days as the property's local dates ("2026-12-10") and
    its nights counted between them, so that an email shows the days the guest lives."""
    data = dict(data)
    days = {key: local_day(data.get(key), zone) for key in STAY_DAYS}
    for key, day in days.items():
        if day is not None:
            data[key] = day.isoformat()
    arrival, departure = days["arrival"], days["departure"]
    if arrival and departure and departure > arrival:
        data["nights"] = (departure - arrival).days
    return data


def format_day(value: Any) -> str:
    """A local date (or an instant, as its UTC date) as 'Thu 10 Dec 2026'; anything
    else as it is. The stay's days are local dates already (``in_local_days``)."""
    day = local_day(value)
    if day is not None:
        return day.strftime("%a %d %b %Y").replace(" 0", " ")
    return "" if value is None else str(value)


def _finalize(value: Any) -> Any:
    # A missing value renders as nothing, never as "None".
    return "" if value is None else value


class EmailTemplates:
    def __init__(self, override_dir: Path | None) -> None:
        dirs = [str(override_dir)] if override_dir else []
        dirs.append(str(BUILT_IN_TEMPLATES))
        loader = jinja2.FileSystemLoader(dirs)
        common: dict[str, Any] = {
            "loader": loader,
            "finalize": _finalize,
            "keep_trailing_newline": True,
            "undefined": jinja2.ChainableUndefined,
        }
        self._text = jinja2.Environment(autoescape=False, **common)
        self._html = jinja2.Environment(autoescape=True, **common)
        for env in (self._text, self._html):
            env.filters["day"] = format_day

    def render(self, kind: str, data: dict[str, Any], zone: str = "UTC") -> RenderedEmail:
        """Render a kind's templates; the stay's days are shown as dates in ``zone``."""
        if not re.fullmatch(r"[a-z0-9_]+", kind):
            invalid_input("email", f"unknown email kind {kind!r}")
        values = {k: v for k, v in in_local_days(data, zone).items() if v is not None}
        try:
            subject = self._text.get_template(f"{kind}.subject.txt").render(values)
            text = self._text.get_template(f"{kind}.txt").render(values)
            html = self._html.get_template(f"{kind}.html").render(values)
        except jinja2.TemplateNotFound as err:
            invalid_input("email", f"no template {err.name} for email kind {kind!r}")
        except jinja2.TemplateError as err:
            invalid_input("email", f"template of {kind!r} does not render: {err}")
        return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)


class EmailActivities:
    """Holds the templates and the SendGrid client, built once at worker start."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._from = settings.email_from
        self._outbox = settings.email_outbox_dir
        self._timeout = settings.sendgrid_timeout_seconds
        self.templates = EmailTemplates(settings.email_templates_dir)
        self._sendgrid: Any = None
        if settings.sendgrid_api_key is not None:
            from sendgrid import SendGridAPIClient

            self._sendgrid = SendGridAPIClient(
                settings.sendgrid_api_key.get_secret_value(), host=settings.sendgrid_host
            )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.send_email]

    def _data(self, request: EmailRequest) -> dict[str, Any]:
        """The template data: the property's name, and the stay's days in its time zone
        (SendGrid's dynamic templates get the same)."""
        data = dict(request.data)
        property_id = data.get("property_id")
        if not data.get("property_name") and isinstance(property_id, str):
            data["property_name"] = self._settings.property_names.get(property_id, property_id)
        zone = self._settings.property_timezones.get(str(property_id or ""), "UTC")
        return in_local_days(data, zone)

    @activity.defn(name="send_email")
    async def send_email(self, request: EmailRequest) -> Delivery:
        """Render and send one email.

        SendGrid: 5xx, 429 (after its Retry-After) and network errors are retryable;
        any other 4xx raises the non-retryable ``IntegrationRejected`` with
        SendGrid's message. Outbox: writes ``<key>.eml`` once; running it again
        for the same key changes nothing. A support email without SUPPORT_EMAIL
        is skipped.
        """
        to = request.to
        if request.recipient == "support":
            to = self._settings.support_email
            if not to:
                return Delivery.skipped("SUPPORT_EMAIL is not set")
        if not to or "@" not in to:
            invalid_input("email", "no valid recipient address")
        data = self._data(request)
        template_id = self._settings.sendgrid_template(request.kind)
        if self._sendgrid is not None and template_id:
            delivery = await self._send_sendgrid(request, to, data, template_id=template_id)
        else:
            rendered = self.templates.render(request.kind, data)
            if self._sendgrid is not None:
                delivery = await self._send_sendgrid(request, to, data, rendered=rendered)
            else:
                path = await asyncio.to_thread(self._write_outbox, request, to, rendered)
                delivery = Delivery.sent("outbox", f"{request.kind} email", str(path))
        log.info(
            "email sent",
            extra=activity_fields(key=request.key, kind=request.kind, provider=delivery.provider),
        )
        return delivery

    def _write_outbox(self, request: EmailRequest, to: str, rendered: RenderedEmail) -> Path:
        self._outbox.mkdir(parents=True, exist_ok=True)
        path = self._outbox / _outbox_name(request.key)
        if path.exists():
            return path
        mail = email.message.EmailMessage()
        mail["From"] = self._from
        mail["To"] = to
        mail["Subject"] = rendered.subject
        mail["Date"] = email.utils.formatdate(localtime=False)
        mail["X-Reactor-Key"] = request.key
        mail["X-Reactor-Kind"] = request.kind
        mail.set_content(rendered.text)
        mail.add_alternative(rendered.html, subtype="html")
        # Write then rename, so a crash never leaves half an email behind.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(bytes(mail))
        os.replace(tmp, path)
        return path

    async def _send_sendgrid(
        self,
        request: EmailRequest,
        to: str,
        data: dict[str, Any],
        *,
        rendered: RenderedEmail | None = None,
        template_id: str | None = None,
    ) -> Delivery:
        from python_http_client.exceptions import HTTPError
        from sendgrid.helpers.mail import CustomArg, Mail

        if rendered is not None:
            mail = Mail(
                from_email=self._from,
                to_emails=to,
                subject=rendered.subject,
                plain_text_content=rendered.text,
                html_content=rendered.html,
            )
        else:
            mail = Mail(from_email=self._from, to_emails=to)
            mail.template_id = template_id
            mail.dynamic_template_data = data
        mail.custom_arg = CustomArg("reactor_key", request.key)

        def post() -> Any:
            return self._sendgrid.client.mail.send.post(
                request_body=mail.get(), timeout=self._timeout
            )

        refused: HTTPError | None = None
        try:
            response = await asyncio.to_thread(post)
        except HTTPError as err:
            refused = err
        except OSError as err:  # connection refused, DNS, timeouts
            unreachable("SendGrid", err)
        if refused is not None:
            # Raised outside the except block, so the error carries no HTTPError chain.
            raise_for_status(
                "SendGrid", int(refused.status_code), refused.body, refused.headers, "the email"
            )
            raise RuntimeError(f"SendGrid answered {refused.status_code}")
        message_id = response.headers.get("X-Message-Id", "") if response.headers else ""
        return Delivery.sent("sendgrid", f"{request.kind} email", message_id)
