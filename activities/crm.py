"""The hotel's CRM: profile changes, sent as an HTTP PATCH with an idempotency key."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.policy import Delivery, http_client, raise_for_status, unreachable
from core.logging import activity_fields
from core.settings import Settings

log = logging.getLogger("reactor.crm")


class ProfileChanges(BaseModel):
    profile_id: str
    changes: dict[str, Any]
    # The event that carried the changes: the idempotency key derives from it.
    event_id: str


class CrmActivities:
    """Holds one ``httpx.AsyncClient`` for the CRM, built once at worker start."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._http = http_client(
            settings.crm_api_url, settings.crm_api_token, settings.http_timeout_seconds
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.crm_update_profile]

    @activity.defn(name="crm_update_profile")
    async def crm_update_profile(self, update: ProfileChanges) -> Delivery:
        """PATCH ``<CRM_API_URL>/profiles/<id>`` with the changed fields.

        Sends ``Idempotency-Key: likemagic-<event id>``, so a retry after a lost
        answer is recognised by the CRM. 5xx, 429, 503 (after Retry-After) and
        network errors are retryable; other 4xx are final.
        """
        if self._http is None:
            return Delivery.skipped("the CRM is not configured (CRM_API_URL is not set)")
        try:
            response = await self._http.patch(
                f"/profiles/{quote(update.profile_id, safe='')}",
                json=update.changes,
                headers={"Idempotency-Key": f"likemagic-{update.event_id}"},
            )
        except httpx.TransportError as err:  # connection errors and timeouts
            unreachable("CRM", err)
        raise_for_status(
            "CRM",
            response.status_code,
            response.content,
            response.headers,
            "the profile update",
            personal=[str(v) for v in update.changes.values() if isinstance(v, str)],
        )
        log.info("crm profile updated", extra=activity_fields(event_id=update.event_id))
        return Delivery.sent("crm", f"updated {len(update.changes)} profile field(s)")
