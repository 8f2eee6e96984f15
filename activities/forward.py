"""Signed forwarding: each event POSTed to third parties, signed per Standard Webhooks.

FORWARD_TARGETS names a YAML file::

    targets:
      - name: partner                  # the reaction is forward-partner
        url: https://partner.example/hooks/likemagic
        topics: ["RESERVATION_*"]      # fnmatch patterns; default every topic
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
        headers: {X-Tenant: hotel-zurich}

Every request carries ``webhook-id`` (the event id: the same on every retry, so the
receiver deduplicates by it), ``webhook-timestamp`` (when this attempt was sent) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``).
The activity log (EVENT_LOG_URL) goes out the same way, with its bearer token and
``Idempotency-Key`` and, having no secret, unsigned; its reaction keeps its name
(``activity-log``) and its alert per failed event.

A target that keeps failing is told to operations once per outage: after
FORWARD_ALERT_AFTER_FAILURES failed attempts in a row, and once more when it answers
again. The count lives in the worker process (``Outages``): each worker tells of an
outage it sees once, and a restarted worker starts counting anew.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.policy import Delivery, raise_for_status
from activities.slack import SlackActivities, SlackMessage, mrkdwn
from activities.targets import ACTIVITY_LOG, read_targets
from activities.teams import TeamsNotice
from core.events import LikeMagicEvent
from core.logging import activity_fields
from core.settings import Settings

log = logging.getLogger("reactor.forward")


class ForwardRequest(BaseModel):
    target: str
    event: LikeMagicEvent


class Outages:
    """Failed attempts in a row per target, and which outages operations were told of."""

    def __init__(self, alert_after: int) -> None:
        self._alert_after = alert_after
        self._failures: dict[str, int] = {}
        self._told: set[str] = set()

    def failed(self, target: str) -> bool:
        """Count a failure; True when operations must now be told of the outage."""
        self._failures[target] = self._failures.get(target, 0) + 1
        if self._failures[target] >= self._alert_after and target not in self._told:
            self._told.add(target)
            return True
        return False

    def answered(self, target: str) -> bool:
        """The target answered; True when it ends an outage operations were told of."""
        self._failures.pop(target, None)
        if target in self._told:
            self._told.discard(target)
            return True
        return False

    def attempts(self, target: str) -> int:
        return self._failures.get(target, 0)


class ForwardActivities:
    """Holds one ``httpx.AsyncClient`` and each target's signer, built once at worker
    start (a bad FORWARD_TARGETS file stops the start: see worker.checked_settings)."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._targets = {t.name: t for t in read_targets(settings.forward_targets)}
        self._signers = {
            t.name: Webhook(t.secret.get_secret_value()) for t in self._targets.values()
        }
        self._event_log = settings.event_log_url
        self._event_log_token = settings.event_log_token
        self._http = httpx.AsyncClient(
            timeout=settings.http_timeout_seconds, headers={"User-Agent": "likemagic-reactor"}
        )
        self._outages = Outages(settings.forward_alert_after_failures)
        self._channels = SlackActivities(settings, client)

    def activities(self) -> list[Callable[..., Any]]:
        return [self.forward_to_target, self.forward_event]

    @activity.defn(name="forward_to_target")
    async def forward_to_target(self, request: ForwardRequest) -> Delivery:
        """POST the event JSON to the named target, signed per Standard Webhooks, with
        ``webhook-id`` = the event id on every attempt. 5xx, 429 (after Retry-After) and
        network errors are retryable; other 4xx are final. A target no longer in
        FORWARD_TARGETS is ``skipped``."""
        target = self._targets.get(request.target)
        if target is None:
            return Delivery.skipped(f"no forward target {request.target} in FORWARD_TARGETS")
        headers = dict(target.headers)
        return await self._send(target.name, target.url, request.event, headers)

    @activity.defn(name="forward_event")
    async def forward_event(self, event: LikeMagicEvent) -> Delivery:
        """POST the event JSON to EVENT_LOG_URL with ``Idempotency-Key: <event id>`` (and
        ``webhook-id``, ``webhook-timestamp``), under the forwarding failure policy."""
        if not self._event_log:
            return Delivery.skipped("the activity log is not configured (EVENT_LOG_URL is not set)")
        headers = {"Idempotency-Key": event.id}
        if self._event_log_token is not None:
            headers["Authorization"] = f"Bearer {self._event_log_token.get_secret_value()}"
        return await self._send(ACTIVITY_LOG, self._event_log, event, headers)

    async def _send(
        self, name: str, url: str, event: LikeMagicEvent, headers: dict[str, str]
    ) -> Delivery:
        body = event.model_dump_json()
        sent_at = datetime.now(UTC)
        headers |= {
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
        }
        signer = self._signers.get(name)
        if signer is not None:
            headers["webhook-signature"] = signer.sign(event.id, sent_at, body)
        provider = "activity log" if name == ACTIVITY_LOG else f"forward target {name}"
        try:
            try:
                response = await self._http.post(url, content=body, headers=headers)
            except httpx.TransportError as err:
                raise ApplicationError(f"{provider} unreachable: {type(err).__name__}") from None
            raise_for_status(
                provider, response.status_code, response.content, response.headers, "the event"
            )
        except ApplicationError as err:
            # The activity log keeps its alert per failed event (the router's).
            if name != ACTIVITY_LOG and self._outages.failed(name):
                await self._tell(name, f"{provider} is failing: {err.message}", down=True)
            raise
        if self._outages.answered(name):
            await self._tell(name, f"{provider} answers again", down=False)
        log.info("event forwarded", extra=activity_fields(event_id=event.id, target=name))
        return Delivery.sent(
            "event-log" if name == ACTIVITY_LOG else name, "forwarded" + _signed(signer)
        )

    async def _tell(self, name: str, what: str, down: bool) -> None:
        """Tell operations of an outage or its end; a failure to tell is logged, and
        changes nothing for the event."""
        if down:
            detail = (
                f"{what} ({self._outages.attempts(name)} failed attempts in a row); its "
                "events are retried and reactor says when it answers again"
            )
        else:
            detail = f"{what}; events that failed meanwhile can be replayed (reactor replay)"
        message = SlackMessage(
            channel="operations",
            text=f":rotating_light: {mrkdwn(detail)}" if down else mrkdwn(detail),
            card=TeamsNotice(title=detail),
        )
        try:
            await self._channels.deliver(message)
        except ApplicationError as err:
            log.warning(
                "forward outage alert failed",
                extra=activity_fields(target=name, error=err.message),
            )


def _signed(signer: Webhook | None) -> str:
    return " (signed)" if signer is not None else ""
