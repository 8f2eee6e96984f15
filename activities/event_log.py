"""The external activity log: every forwarded event is POSTed as the platform sent it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client

from activities.policy import Delivery, http_client, raise_for_status, unreachable
from core.events import LikeMagicEvent
from core.logging import activity_fields
from core.settings import Settings

log = logging.getLogger("reactor.event_log")


class EventLogActivities:
    """Holds one ``httpx.AsyncClient`` for EVENT_LOG_URL, built once at worker start."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._url = settings.event_log_url
        self._http = http_client(
            settings.event_log_url, settings.event_log_token, settings.http_timeout_seconds
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.forward_event]

    @activity.defn(name="forward_event")
    async def forward_event(self, event: LikeMagicEvent) -> Delivery:
        """POST the event JSON to EVENT_LOG_URL with ``Idempotency-Key: <event id>``.

        5xx, 429, 503 (after Retry-After) and network errors are retryable; other
        4xx are final.
        """
        if self._http is None or not self._url:
            return Delivery.skipped("the activity log is not configured (EVENT_LOG_URL is not set)")
        try:
            response = await self._http.post(
                self._url,
                content=event.model_dump_json(),
                headers={"Content-Type": "application/json", "Idempotency-Key": event.id},
            )
        except httpx.TransportError as err:
            unreachable("activity log", err)
        raise_for_status(
            "activity log", response.status_code, response.content, response.headers, "the event"
        )
        log.info("event forwarded", extra=activity_fields(event_id=event.id))
        return Delivery.sent("event-log", "forwarded")
