"""Microsoft Teams: Adaptive Cards posted to a Workflows / incoming-webhook URL per channel.

The cards say what the Slack messages say. Text from events (a guest's name and words,
a task title, an error) only ever goes into ``TextRun``s of ``RichTextBlock``s: Teams
reads no Markdown there (unlike ``TextBlock`` and ``FactSet``), so ``**``, ``[a](url)``
or ``{{DATE(...)}}`` in a guest's words stay text and plant no link.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, NoReturn

import httpx
from adaptive_cards import types as card_types
from adaptive_cards.card import ActionOpenUrl, AdaptiveCard, RichTextBlock, TextRun
from pydantic import BaseModel, SecretStr
from temporalio.exceptions import ApplicationError

from activities.policy import raise_for_status
from core.links import workflow_url
from core.logging import activity_fields
from core.settings import Settings

log = logging.getLogger("reactor.teams")

Channel = Literal["operations", "support", "supervisor"]

CARD_VERSION = "1.4"  # what Teams renders on every client, mobile included
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
# One value of an event in a card (a card may hold 28 KB in all).
VALUE_LIMIT = 1000


class TeamsNotice(BaseModel):
    """What a card shows, as plain text (never Markdown): a title, an optional quote
    (a guest's words), label/value facts, and the execution to open in Temporal."""

    title: str
    quote: str | None = None
    facts: list[tuple[str, str]] = []
    workflow_id: str | None = None
    link_title: str = "Open in Temporal"


def notice_facts(pairs: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """The pairs that have a value (as the Slack ``facts`` section shows them)."""
    return [(label, value) for label, value in pairs if value]


def _plain(text: str, **style: Any) -> RichTextBlock:
    return RichTextBlock(inlines=[TextRun(text=text[:VALUE_LIMIT], **style)])


def card(notice: TeamsNotice, link: str | None) -> AdaptiveCard:
    """The Adaptive Card of a notice; ``link`` (the Temporal UI) becomes its action."""
    body: list[Any] = [
        _plain(notice.title, weight=card_types.FontWeight.BOLDER, size=card_types.FontSize.MEDIUM)
    ]
    if notice.quote:
        body.append(_plain(notice.quote, italic=True))
    for label, value in notice.facts[:10]:
        body.append(
            RichTextBlock(
                inlines=[
                    # Labels are reactor's own words; values come from events.
                    TextRun(text=f"{label}: ", weight=card_types.FontWeight.BOLDER),
                    TextRun(text=value[:VALUE_LIMIT]),
                ]
            )
        )
    actions: list[Any] = []
    if link:
        actions.append(ActionOpenUrl(title=notice.link_title, url=link, mode=None))
    return AdaptiveCard(version=CARD_VERSION, body=body, actions=actions or None)


def message(adaptive_card: AdaptiveCard) -> dict[str, Any]:
    """The JSON a Teams Workflows or incoming webhook takes: a message with one card."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": adaptive_card.to_dict()}
        ],
    }


def text_card(text: str) -> TeamsNotice:
    """A notice from a Slack text that came without one: its escapes undone, shown plain."""
    plain = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return TeamsNotice(title=plain)


class TeamsChannels:
    """One ``httpx.AsyncClient`` for the Teams webhooks, built once at worker start.

    The support and supervisor channels fall back to TEAMS_WEBHOOK_URL. The URLs are
    secrets: no error text or log line carries them.
    """

    VARIABLES = {
        "operations": "TEAMS_WEBHOOK_URL",
        "support": "TEAMS_SUPPORT_WEBHOOK_URL or TEAMS_WEBHOOK_URL",
        "supervisor": "TEAMS_SUPERVISOR_WEBHOOK_URL or TEAMS_WEBHOOK_URL",
    }

    def __init__(self, settings: Settings) -> None:
        ops = settings.teams_webhook_url
        self._urls: dict[str, SecretStr | None] = {
            "operations": ops,
            "support": settings.teams_support_webhook_url or ops,
            "supervisor": settings.teams_supervisor_webhook_url or ops,
        }
        self._ui = settings.temporal_ui_url.rstrip("/")
        self._namespace = settings.temporal_namespace
        self._http = (
            httpx.AsyncClient(
                timeout=settings.http_timeout_seconds,
                headers={"User-Agent": "likemagic-reactor"},
            )
            if any(self._urls.values())
            else None
        )

    def configured(self, channel: Channel) -> bool:
        return self._urls[channel] is not None

    def link(self, workflow_id: str | None) -> str | None:
        return workflow_url(self._ui, self._namespace, workflow_id) if workflow_id else None

    async def post(self, channel: Channel, notice: TeamsNotice) -> None:
        """Post the notice's card. 429 (after Retry-After), 5xx and network errors are
        retryable; other 4xx are final (see activities/policy.py)."""
        url = self._urls[channel]
        if url is None or self._http is None:
            raise RuntimeError(f"Teams {channel} channel is not configured")
        payload = message(card(notice, self.link(notice.workflow_id)))
        try:
            response = await self._http.post(url.get_secret_value(), json=payload)
        except httpx.TransportError as err:
            unreachable(err)
        raise_for_status(
            "Teams", response.status_code, response.content, response.headers, "the card"
        )
        log.info("teams card posted", extra=activity_fields(channel=channel))


def unreachable(err: httpx.TransportError) -> NoReturn:
    """Retryable, as every connection error; not ``str(err)``: it may name the URL."""
    raise ApplicationError(f"Teams unreachable: {type(err).__name__}") from None
