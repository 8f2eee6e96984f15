"""Reading past events back from Temporal itself (its visibility store), not a second store."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.policy import invalid_input
from core.events import LikeMagicEvent
from core.settings import Settings

SAFE_VALUE = re.compile(r"[A-Za-z0-9._:@/ -]+")


class FindEvent(BaseModel):
    object_id: str
    topic: str


class TemporalLookupActivities:
    def __init__(self, settings: Settings, client: Client) -> None:
        self._client = client

    def activities(self) -> list[Callable[..., Any]]:
        return [self.find_event]

    @activity.defn(name="find_event")
    async def find_event(self, query: FindEvent) -> LikeMagicEvent | None:
        """The newest event of ``topic`` about ``object_id`` that reactor received, if any.

        Read-only; Temporal errors are retried.
        """
        for value in (query.object_id, query.topic):
            if not SAFE_VALUE.fullmatch(value):
                invalid_input("Temporal lookup", f"unsupported characters in {value!r}")
        listing = self._client.list_workflows(
            f'WorkflowType = "EventRouter" AND ObjectId = "{query.object_id}" '
            f'AND Topic = "{query.topic}"',
            limit=1,
        )
        async for execution in listing:
            handle = self._client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes
            [event] = await self._client.data_converter.decode(
                started.input.payloads, [LikeMagicEvent]
            )
            return event if isinstance(event, LikeMagicEvent) else None
        return None
