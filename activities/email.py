"""Email: templates rendered with Jinja2, sent through SendGrid, or written to a dev outbox.

Each email kind (``welcome``, ``booking_confirmation``, ``support_alert``, ...) has
built-in templates in ``activities/templates/email/<language>/``:
``<kind>.subject.txt``, ``<kind>.txt`` and ``<kind>.html``; a language is a folder
(en, de, fr, it ship). An email goes out in the guest's language when templates
exist for it, else in the property's (PROPERTY_LANGUAGES), else in English. A file
of the same name in ``EMAIL_TEMPLATES_DIR/<language>/`` overrides the built-in
one (directly in ``EMAIL_TEMPLATES_DIR``: the English one). Dates are written for
the language, in the property's time zone. With ``SENDGRID_TEMPLATE_<KIND>_<LANG>``
or ``SENDGRID_TEMPLATE_<KIND>`` set, SendGrid renders that dynamic template with
the same data instead.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import glob
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from babel.core import Locale, UnknownLocaleError
from babel.dates import format_skeleton
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.policy import (
    Delivery,
    in_provider_thread,
    invalid_input,
    raise_for_status,
    unreachable,
)
from core.logging import activity_fields
from core.settings import Settings
from storage.effects import EffectsLedger

log = logging.getLogger("reactor.email")

BUILT_IN_TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"
DEFAULT_LANGUAGE = "en"
# The CLDR locale a language's dates are written in, where the bare language would
# read oddly to a European hotel's guests ("Dec 10" order for English).
DATE_LOCALES = {"en": "en_GB"}


# The values of an email's data that name a person (kept out of provider error texts).


class EmailRequest(BaseModel):
    """One email to send. ``key`` identifies it (the workflow ID of its reaction);
    ``data`` fills the kind's template (missing keys render as nothing). The
    recipient is ``to``, or for ``recipient="support"`` the SUPPORT_EMAIL address."""

    key: str
    kind: str
    to: str | None = None
    recipient: Literal["guest", "support"] = "guest"
    data: dict[str, Any] = {}
    # The guest's language as the platform spells it ("de", "de-CH"); None: the
    # property's language (PROPERTY_LANGUAGES), else English.
    language: str | None = None


class RenderedEmail(BaseModel):
    subject: str
    text: str
    html: str


def _personal_values(data: dict[str, Any]) -> list[str]:
    """The guest's words and names an email's data holds (a provider may quote them)."""
    return [
        str(value)
        for key, value in data.items()
        if isinstance(value, str) and key.endswith(("name", "email", "phone", "text"))
    ]


def _outbox_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "__", key) + ".eml"


def outbox_files(outbox: Path, workflow_id: str) -> list[Path]:
    """The outbox emails a workflow wrote: keyed by its ID, or by `<its ID>/<kind>`."""
    stem = _outbox_name(workflow_id).removesuffix(".eml")
    found = [outbox / f"{stem}.eml", *outbox.glob(f"{glob.escape(stem)}__*.eml")]
    return [path for path in found if path.is_file()]


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


def language_code(value: Any) -> str | None:
    """The language of "de", "de-CH", "de_CH" or "DE": "de"; None for anything else."""
    if not isinstance(value, str):
        return None
    code = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


def format_day(value: Any, language: str = DEFAULT_LANGUAGE, zone: str = "UTC") -> str:
    """An ISO date or instant as the day in ``language`` ("Thu, 10 Dec 2026", "Do.,
    10. Dez. 2026"), an instant taken in the time zone ``zone``; anything else as it is."""
    day = local_day(value, zone)
    if day is None:
        return "" if value is None else str(value)
    try:
        locale = Locale.parse(DATE_LOCALES.get(language, language))
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse(DATE_LOCALES[DEFAULT_LANGUAGE])
    return str(format_skeleton("yMMMEd", day, locale=locale))


@jinja2.pass_context
def _day_filter(context: jinja2.runtime.Context, value: Any) -> str:
    # The language and zone of the email being rendered (see EmailTemplates.render).
    return format_day(
        value, context.get("_language", DEFAULT_LANGUAGE), context.get("_zone", "UTC")
    )


def _finalize(value: Any) -> Any:
    # A missing value renders as nothing, never as "None".
    return "" if value is None else value


class EmailTemplates:
    """The templates of every language: the built-in folders, under the overrides."""

    def __init__(self, override_dir: Path | None) -> None:
        self._override = override_dir
        # language -> (text environment, HTML environment), built on first use
        self._envs: dict[str, tuple[jinja2.Environment, jinja2.Environment]] = {}

    def _dirs(self, language: str) -> list[Path]:
        dirs: list[Path] = []
        if self._override is not None:
            dirs.append(self._override / language)
            if language == DEFAULT_LANGUAGE:
                dirs.append(self._override)  # overrides made before languages were folders
        dirs.append(BUILT_IN_TEMPLATES / language)
        return dirs

    def has(self, language: str, kind: str) -> bool:
        """Whether ``kind`` has templates in ``language``."""
        if not re.fullmatch(r"[a-z]{2,3}", language) or not re.fullmatch(r"[a-z0-9_]+", kind):
            return False
        return any((d / f"{kind}.txt").is_file() for d in self._dirs(language))

    def _environments(self, language: str) -> tuple[jinja2.Environment, jinja2.Environment]:
        if language not in self._envs:
            common: dict[str, Any] = {
                "loader": jinja2.FileSystemLoader([str(d) for d in self._dirs(language)]),
                "finalize": _finalize,
                "keep_trailing_newline": True,
                "undefined": jinja2.ChainableUndefined,
            }
            text = jinja2.Environment(autoescape=False, **common)
            html = jinja2.Environment(autoescape=True, **common)
            for env in (text, html):
                env.filters["day"] = _day_filter
            self._envs[language] = (text, html)
        return self._envs[language]

    def render(
        self,
        kind: str,
        data: dict[str, Any],
        language: str = DEFAULT_LANGUAGE,
        zone: str = "UTC",
    ) -> RenderedEmail:
        if not re.fullmatch(r"[a-z0-9_]+", kind):
            invalid_input("email", f"unknown email kind {kind!r}")
        if not self.has(language, kind):
            language = DEFAULT_LANGUAGE
        text_env, html_env = self._environments(language)
        values = {k: v for k, v in in_local_days(data, zone).items() if v is not None}
        values.update(_language=language, _zone=zone)
        try:
            subject = text_env.get_template(f"{kind}.subject.txt").render(values)
            text = text_env.get_template(f"{kind}.txt").render(values)
            html = html_env.get_template(f"{kind}.html").render(values)
        except jinja2.TemplateNotFound as err:
            invalid_input("email", f"no template {err.name} for email kind {kind!r}")
        except jinja2.TemplateError as err:
            invalid_input("email", f"template of {kind!r} does not render: {err}")
        return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)


class EmailActivities:
    """Holds the templates, the SendGrid client and the effects ledger (the worker's one,
    else its own), built once at worker start."""

    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        ledger: EffectsLedger | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger or EffectsLedger(settings.intake_database_url)
        self._from = settings.email_from
        self._outbox = settings.email_outbox_dir
        self._timeout = settings.sendgrid_timeout_seconds
        self._threads = settings.worker_max_concurrent_activities
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
        data = dict(request.data)
        property_id = data.get("property_id")
        if not data.get("property_name") and isinstance(property_id, str):
            data["property_name"] = self._settings.property_names.get(property_id, property_id)
        # The stay's days as the property's local dates (SendGrid's templates get them too).
        zone = self._settings.property_timezones.get(str(property_id or ""), "UTC")
        return in_local_days(data, zone)

    def language_of(self, request: EmailRequest) -> str:
        """The guest's language if the kind has templates (or a SendGrid template) in
        it, else the property's (PROPERTY_LANGUAGES), else English."""
        property_id = request.data.get("property_id")
        property_language = (
            self._settings.property_languages.get(property_id)
            if isinstance(property_id, str)
            else None
        )
        for candidate in (request.language, property_language):
            code = language_code(candidate)
            if code is None:
                continue
            if self.templates.has(code, request.kind):
                return code
            if self._sendgrid is not None and self._settings.sendgrid_template(
                request.kind, code
            ) != self._settings.sendgrid_template(request.kind):
                return code  # the hotel's SendGrid template of that language
        return DEFAULT_LANGUAGE

    def _zone(self, request: EmailRequest) -> str:
        property_id = request.data.get("property_id")
        return self._settings.property_timezones.get(str(property_id or ""), "UTC")

    @activity.defn(name="send_email")
    async def send_email(self, request: EmailRequest) -> Delivery:
        """Render and send one email.

        SendGrid: 5xx, 429 (after its Retry-After) and network errors are retryable;
        any other 4xx raises the non-retryable ``IntegrationRejected`` with
        SendGrid's message. SendGrid takes no idempotency key: the send is recorded
        in the effects ledger under ``<key>/sendgrid``, and a retry after SendGrid
        accepted it returns the recorded delivery without sending again. Outbox: writes
        ``<key>.eml`` once; running it again for the same key changes nothing. A support
        email without SUPPORT_EMAIL is skipped.
        """
        to = request.to
        if request.recipient == "support":
            to = self._settings.support_email
            if not to:
                return Delivery.skipped("SUPPORT_EMAIL is not set")
        if not to or "@" not in to:
            invalid_input("email", "no valid recipient address")
        data = self._data(request)
        language = self.language_of(request)
        data["language"] = language
        template_id = self._settings.sendgrid_template(request.kind, language)
        if self._sendgrid is not None and template_id:
            delivery = await self._send_sendgrid(request, to, data, template_id=template_id)
        else:
            rendered = self.templates.render(request.kind, data, language, self._zone(request))
            if self._sendgrid is not None:
                delivery = await self._send_sendgrid(request, to, data, rendered=rendered)
            else:
                path = await asyncio.to_thread(self._write_outbox, request, to, rendered, language)
                delivery = Delivery.sent("outbox", f"{request.kind} email", str(path))
        if language != DEFAULT_LANGUAGE:
            delivery.detail = f"{delivery.detail} in {language}"
        log.info(
            "email sent",
            extra=activity_fields(
                key=request.key, kind=request.kind, provider=delivery.provider, language=language
            ),
        )
        return delivery

    def _write_outbox(
        self, request: EmailRequest, to: str, rendered: RenderedEmail, language: str
    ) -> Path:
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
        mail["Content-Language"] = language  # after the content, which resets Content-*
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
        async def send() -> str:
            return await self._post_sendgrid(
                request, to, data, rendered=rendered, template_id=template_id
            )

        effect = await self._ledger.once(f"{request.key}/sendgrid", "sendgrid", send)
        return Delivery.sent("sendgrid", f"{request.kind} email", effect.reference)

    async def _post_sendgrid(
        self,
        request: EmailRequest,
        to: str,
        data: dict[str, Any],
        *,
        rendered: RenderedEmail | None,
        template_id: str | None,
    ) -> str:
        """Send through SendGrid; its message id."""
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
            response = await in_provider_thread(self._threads, post)
        except HTTPError as err:
            refused = err
        except OSError as err:  # connection refused, DNS, timeouts
            unreachable("SendGrid", err)
        if refused is not None:
            # Raised outside the except block, so the error carries no HTTPError chain.
            raise_for_status(
                "SendGrid",
                int(refused.status_code),
                refused.body,
                refused.headers,
                "the email",
                personal=[to, *_personal_values(request.data)],
            )
            raise RuntimeError(f"SendGrid answered {refused.status_code}")
        return str(response.headers.get("X-Message-Id", "")) if response.headers else ""
