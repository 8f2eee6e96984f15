"""Slack: incoming webhooks for the operations channel and the support channel."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel
from slack_sdk.errors import SlackRequestError
from slack_sdk.webhook import WebhookClient
from temporalio import activity
from temporalio.client import Client

from activities.policy import (
    Delivery,
    in_provider_thread,
    invalid_input,
    raise_for_status,
    unreachable,
)
from core.links import workflow_url
from core.logging import activity_fields
from core.settings import Settings

log = logging.getLogger("reactor.slack")

Channel = Literal["operations", "support", "supervisor"]


class SlackMessage(BaseModel):
    """A Block Kit message; ``text`` is the plain-text fallback (notifications, old clients)."""

    channel: Channel
    text: str
    blocks: list[dict[str, Any]] = []


class FailureAlert(BaseModel):
    """A reaction (or, with ``reaction`` empty, the event's router) that failed for good."""

    event_id: str
    topic: str
    reaction: str
    workflow_id: str
    error: str


def mrkdwn(text: str) -> str:
    """Untrusted text (a guest's name or words, a task title, an error) made inert in Slack
    mrkdwn: with & < > escaped, as Slack asks, it can neither mention (``<!channel>``,
    ``<@U1>``) nor plant a disguised link (``<https://evil.example|open>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section: escape the untrusted parts of ``text`` with ``mrkdwn`` first."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def facts(pairs: list[tuple[str, str | None]]) -> dict[str, Any]:
    """Label / value fields; the values are escaped (they come from events)."""
    shown = [{"type": "mrkdwn", "text": f"*{k}*\n{mrkdwn(v)}"} for k, v in pairs if v]
    return {"type": "section", "fields": shown[:10]}


class SlackActivities:
    """Holds one webhook client per channel, built once at worker start.

    The support and supervisor channels fall back to the operations channel. A channel without a
    URL makes the message ``skipped``, never failed.
    """

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        timeout = int(max(1, settings.http_timeout_seconds))
        ops = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
        support_url = settings.slack_support_webhook_url
        support = support_url.get_secret_value() if support_url else ops
        supervisor_url = settings.slack_supervisor_webhook_url
        supervisor = supervisor_url.get_secret_value() if supervisor_url else ops
        # Retries are Temporal's job: no hidden retries inside the client.
        self._clients: dict[str, WebhookClient | None] = {
            "operations": WebhookClient(ops, timeout=timeout, retry_handlers=[]) if ops else None,
            "support": (
                WebhookClient(support, timeout=timeout, retry_handlers=[]) if support else None
            ),
            "supervisor": (
                WebhookClient(supervisor, timeout=timeout, retry_handlers=[])
                if supervisor
                else None
            ),
        }
        self._threads = settings.worker_max_concurrent_activities
        self._ui = settings.temporal_ui_url.rstrip("/")
        self._namespace = settings.temporal_namespace

    def activities(self) -> list[Callable[..., Any]]:
        return [self.post_slack, self.alert_reaction_failed]

    @activity.defn(name="post_slack")
    async def post_slack(self, message: SlackMessage) -> Delivery:
        """Post one message. 5xx, 429 and network errors are retryable; other 4xx
        (invalid_payload, no_service, channel_is_archived) are final.

        Incoming webhooks take no idempotency key: if Slack accepts a message and
        the answer is lost, the retry posts it a second time.
        """
        client = self._clients[message.channel]
        if client is None:
            variable = "SLACK_WEBHOOK_URL"
            if message.channel != "operations":
                variable = f"SLACK_{message.channel.upper()}_WEBHOOK_URL or SLACK_WEBHOOK_URL"
            return Delivery.skipped(f"Slack is not configured ({variable} is not set)")
        if not message.text.strip():
            invalid_input("Slack", "the message has no text")
        try:
            # No previews: a link in a guest's words must not unfurl into the channel.
            response = await in_provider_thread(
                self._threads,
                functools.partial(
                    client.send,
                    text=message.text,
                    blocks=message.blocks or None,
                    unfurl_links=False,
                    unfurl_media=False,
                ),
            )
        except SlackRequestError as err:
            invalid_input("Slack", str(err))
        except OSError as err:
            unreachable("Slack", err)
        raise_for_status(
            "Slack", response.status_code, response.body, response.headers, action="the message"
        )
        log.info("slack message posted", extra=activity_fields(channel=message.channel))
        return Delivery.sent("slack", f"posted to the {message.channel} channel")

    @activity.defn(name="alert_reaction_failed")
    async def alert_reaction_failed(self, alert: FailureAlert) -> Delivery:
        """Tell the operations channel that a reaction (or a router) failed for good."""
        link = workflow_url(self._ui, self._namespace, alert.workflow_id)
        what = f"Reaction {alert.reaction}" if alert.reaction else "The router"
        text = mrkdwn(f"{what} failed for event {alert.event_id} ({alert.topic}): {alert.error}")
        title = f"Reaction `{mrkdwn(alert.reaction)}`" if alert.reaction else "The router"
        blocks = [
            section(f":rotating_light: *{title} failed* <{link}|open in Temporal>"),
            facts(
                [
                    ("Event", f"`{alert.event_id}`"),
                    ("Topic", alert.topic),
                    ("Error", alert.error[:1000]),
                ]
            ),
        ]
        return await self.post_slack(SlackMessage(channel="operations", text=text, blocks=blocks))
