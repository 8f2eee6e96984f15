"""A reaction's own HTTP endpoint: what `reactor new reaction --http` writes calls to.

Each such reaction POSTs JSON to the URL in ``REACTION_URL_<REACTION>``
(``REACTION_URL_CONDITION_ALERT`` for condition-alert), with the event's id as the
idempotency key, under the failure policy every integration follows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.policy import Delivery, raise_for_status, unreachable
from core.logging import activity_fields
from core.settings import Settings, reaction_url_variable

log = logging.getLogger("reactor.endpoints")


class EndpointCall(BaseModel):
    """One POST of a reaction to its endpoint: ``body`` is sent as JSON."""

    reaction: str
    # The event the call is about: the idempotency key derives from it.
    event_id: str
    body: dict[str, Any]


class EndpointActivities:
    """Holds one ``httpx.AsyncClient`` for every reaction's endpoint, built once at worker
    start."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._http = httpx.AsyncClient(
            headers={"User-Agent": "likemagic-reactor"}, timeout=settings.http_timeout_seconds
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.post_endpoint]

    @activity.defn(name="post_endpoint")
    async def post_endpoint(self, call: EndpointCall) -> Delivery:
        """POST ``body`` to ``REACTION_URL_<REACTION>``; skipped while that is unset.

        Sends ``Idempotency-Key: likemagic-<event id>``, so the endpoint can tell a
        retry after a lost answer from a new call. 5xx, 429, 503 (after Retry-After)
        and network errors are retryable; other 4xx are final.
        """
        url = self._settings.reaction_url(call.reaction)
        if url is None:
            return Delivery.skipped(f"{reaction_url_variable(call.reaction)} is not set")
        endpoint = f"the {call.reaction} endpoint"
        try:
            response = await self._http.post(
                url, json=call.body, headers={"Idempotency-Key": f"likemagic-{call.event_id}"}
            )
        except httpx.TransportError as err:  # connection errors and timeouts
            unreachable(endpoint, err)
        raise_for_status(
            endpoint,
            response.status_code,
            response.content,
            response.headers,
            "the call",
            personal=[v for v in call.body.values() if isinstance(v, str)],
        )
        log.info(
            "endpoint called",
            extra=activity_fields(event_id=call.event_id, reaction=call.reaction),
        )
        return Delivery.sent("http", f"{call.reaction} endpoint answered {response.status_code}")
