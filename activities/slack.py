"""The chat channels: Slack incoming webhooks and Microsoft Teams cards, per channel
(operations, support, supervisor), posted by one activity so that a workflow's calls
stay the same whichever of the two is configured."""

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
from temporalio.exceptions import ApplicationError

from activities.policy import (
    INTEGRATION_REJECTED,
    Delivery,
    in_provider_thread,
    invalid_input,
    raise_for_status,
    unreachable,
)
from activities.targets import FORWARD_PREFIX
from activities.teams import TeamsChannels, TeamsNotice, notice_facts, text_card
from core.links import workflow_url
from core.logging import activity_fields
from core.settings import Settings
from storage.effects import EffectsLedger

log = logging.getLogger("reactor.slack")

Channel = Literal["operations", "support", "supervisor"]


class SlackMessage(BaseModel):
    """A message to a channel: for Slack, Block Kit ``blocks`` with ``text`` as the
    plain-text fallback (both mrkdwn, escaped); for Teams, the ``card``'s plain facts
    (without one, a card of ``text``)."""

    channel: Channel
    text: str
    blocks: list[dict[str, Any]] = []
    card: TeamsNotice | None = None


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
    URL makes the message ``skipped``, never failed. Posts made by the activity are
    recorded in the effects ledger (the worker's one, else its own).
    """

    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        ledger: EffectsLedger | None = None,
    ) -> None:
        self._ledger = ledger or EffectsLedger(settings.intake_database_url)
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
        self._teams = TeamsChannels(settings)
        self._threads = settings.worker_max_concurrent_activities
        self._ui = settings.temporal_ui_url.rstrip("/")
        self._namespace = settings.temporal_namespace

    def activities(self) -> list[Callable[..., Any]]:
        return [self.post_slack, self.alert_reaction_failed]

    @activity.defn(name="post_slack")
    async def post_slack(self, message: SlackMessage) -> Delivery:
        """Post one message to the channel in Slack and in Teams, where each is configured
        (neither: ``skipped``). 5xx, 429 and network errors are retryable; other 4xx
        (invalid_payload, no_service, channel_is_archived) are final.

        Neither takes an idempotency key: each post is recorded in the effects ledger
        under ``<workflow id>/<run id>/<activity type>-<activity id>/<slack|teams>``, so
        a retry does not post again what the service already accepted (a retry after
        Teams failed does not post to Slack again). What one attempt posted is also kept
        in the heartbeat details.
        """
        info = activity.info()
        details = info.heartbeat_details
        done = set(details[0]) if details and isinstance(details[0], list) else set()
        step = None
        if info.workflow_id:
            step = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_type}-"
            step += info.activity_id
        return await self.deliver(message, done, step=step)

    async def deliver(
        self, message: SlackMessage, done: set[str] | None = None, step: str | None = None
    ) -> Delivery:
        """Post to each configured service not in ``done``; raise the failure policy's
        error if one failed (non-retryable only when every failure is). With ``step``
        (an activity's), each post goes through the effects ledger as ``<step>/<service>``."""
        done = set() if done is None else done
        slack = self._clients[message.channel]
        teams = self._teams.configured(message.channel)
        if slack is None and not teams:
            variable = "SLACK_WEBHOOK_URL"
            if message.channel != "operations":
                variable = f"SLACK_{message.channel.upper()}_WEBHOOK_URL or SLACK_WEBHOOK_URL"
            if message.channel == "operations":
                return Delivery.skipped(f"Slack is not configured ({variable} is not set)")
            teams_variable = TeamsChannels.VARIABLES[message.channel]
            return Delivery.skipped(
                f"Slack is not configured ({variable} is not set), nor Teams ({teams_variable})"
            )
        if not message.text.strip():
            invalid_input("Slack", "the message has no text")
        services = [name for name, on in (("slack", slack), ("teams", teams)) if on]
        failures: list[ApplicationError] = []
        for service in services:
            if service in done:
                continue
            try:
                await self._post_once(service, message, step)
            except ApplicationError as err:
                failures.append(err)
                continue
            done.add(service)
            if activity.in_activity():
                activity.heartbeat(sorted(done))
        if failures:
            if len(failures) == 1:
                raise failures[0]
            raise ApplicationError(
                "; ".join(str(f) for f in failures),
                type=INTEGRATION_REJECTED if all(f.non_retryable for f in failures) else None,
                non_retryable=all(f.non_retryable for f in failures),
            )
        return Delivery.sent("+".join(services), f"posted to the {message.channel} channel")

    async def _post_once(self, service: str, message: SlackMessage, step: str | None) -> None:
        async def post() -> str:
            if service == "slack":
                await self._post_slack(message)
            else:
                await self._teams.post(message.channel, message.card or text_card(message.text))
            return ""  # neither answers with a reference

        if step is None:
            await post()
        else:
            await self._ledger.once(f"{step}/{service}", service, post)

    async def _post_slack(self, message: SlackMessage) -> None:
        client = self._clients[message.channel]
        assert client is not None
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

    @activity.defn(name="alert_reaction_failed")
    async def alert_reaction_failed(self, alert: FailureAlert) -> Delivery:
        """Tell the operations channel that a reaction (or a router) failed for good; a forward
        target's failures are told once per outage by the forwarding itself."""
        if alert.reaction.startswith(FORWARD_PREFIX):
            return Delivery.skipped(
                "forward targets alert operations once per outage, not per event "
                "(FORWARD_ALERT_AFTER_FAILURES)"
            )
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
        card = TeamsNotice(
            title=f"Reaction {alert.reaction} failed",
            facts=notice_facts(
                [("Event", alert.event_id), ("Topic", alert.topic), ("Error", alert.error)]
            ),
            workflow_id=alert.workflow_id,
        )
        return await self.post_slack(
            SlackMessage(channel="operations", text=text, blocks=blocks, card=card)
        )
