"""No event stuck after a 200: the webhook refuses what Temporal or the worker could not
hold, and a router that still cannot decode its event fails at once, visibly."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RawValue, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

import core.events
from core.events import ID_MAX_LENGTH, MAX_EVENT_BYTES, MAX_NESTING, nesting_depth
from core.temporal import TOPIC
from tests.conftest import sample
from tests.helpers import running_reactor, unique, until
from tests.integrations import integrations
from tests.test_cli import live_reactor, write_event
from tests.test_webhook import assert_error


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


def with_depth(depth: int) -> dict[str, Any]:
    """A real event whose JSON nests exactly ``depth`` levels."""
    event = unique(sample("reservation_checked_out"), topic="TEST_DEEP_EVENT")
    event["context"] = {**event["context"], "deep": nested(depth - 2)}
    assert nesting_depth(event) == depth
    return event


async def test_nesting_over_the_limit_is_422_and_at_the_limit_is_routed(temporal_env, tmp_path):
    at_limit = with_depth(MAX_NESTING)
    over = with_depth(MAX_NESTING + 1)
    # Deeper than Python's own JSON decoder goes: still the same 422, never a 500.
    abyss = '{"id": "deep-1", "topic": "X", "context": ' + "[" * 20000 + "]" * 20000 + "}"
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        accepted = await reactor.post(at_limit)
        refused = await reactor.post(over)
        refused_abyss = await reactor.post(abyss)
        result = await reactor.routed(at_limit["id"])
    assert accepted.json()["status"] == "accepted"
    assert result.event_id == at_limit["id"]
    for response in (refused, refused_abyss):
        assert f"{MAX_NESTING} levels" in assert_error(response, 422, "too_deep")["message"]


@pytest.mark.parametrize("field", ["objectId", "pmsPropertyId", "objectType", "actorId"])
async def test_ids_longer_than_temporal_takes_are_422(temporal_env, tmp_path, field):
    event = unique(sample("task_created"), **{field: "A" * 5000})
    at_limit = unique(sample("task_created"), topic="TEST_LONG_ID", **{field: "é" * ID_MAX_LENGTH})
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        refused = await reactor.post(event)
        accepted = await reactor.post(at_limit)
    error = assert_error(refused, 422, "invalid_event")
    assert [d["field"] for d in error["details"]] == [field]
    assert "Retry-After" not in refused.headers
    assert accepted.json()["status"] == "accepted"


async def test_an_event_over_the_payload_limit_is_422(temporal_env, tmp_path):
    event = unique(sample("task_created"))
    event["context"]["padding"] = "x" * (MAX_EVENT_BYTES + 1)
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        response = await reactor.post(event)
        after = await reactor.post(event)  # nothing was started: refused again, not duplicate
    assert str(MAX_EVENT_BYTES) in assert_error(response, 422, "event_too_large")["message"]
    assert_error(after, 422, "event_too_large")


def event_payload(event: dict[str, Any]) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(event).encode())


async def test_a_router_that_cannot_decode_its_event_fails_at_once_and_replays_once_fixed(
    temporal_env, tmp_path, monkeypatch
):
    # A worker with a decoding bug (it refuses every event id) got an event that an API
    # had accepted; after the fix, `reactor replay` runs the router again.
    topic = f"TEST_UNDECODABLE_{uuid.uuid4().hex[:8].upper()}"
    event = unique(sample("reservation_created"), topic=topic)
    event["context"]["guest"] = {"email": "ana.silva@example.com"}
    client = temporal_env.client
    with integrations() as fakes:
        async with live_reactor(client, tmp_path, **fakes.settings()) as live:
            monkeypatch.setattr(core.events, "EVENT_ID_PATTERN", re.compile(r"(?!)"))
            handle = await client.start_workflow(
                "EventRouter",
                RawValue(event_payload(event)),
                id=event["id"],
                task_queue=live.settings.task_queue,
                search_attributes=TypedSearchAttributes([SearchAttributePair(TOPIC, topic)]),
            )
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
            monkeypatch.undo()

            async def listed() -> list[dict[str, Any]]:
                found = await live.json("failed", "--since", "10m", "--topic", topic)
                return list(found["failed"])

            rows = await until(listed, "the stuck event listed", pause=0.2)
            replayed = await live.reactor("replay", event["id"])
            redelivered = await live.json("send", write_event(tmp_path, event))
            still_listed = await live.json("failed", "--since", "10m", "--topic", topic)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "EventUndecodable"
    assert "cannot decode the event" in cause.message and "id:" in cause.message
    assert "ana.silva" not in cause.message
    assert [(r["event_id"], r["reaction"]) for r in rows] == [(event["id"], "(router)")]
    [alert] = fakes.slack_ops.requests
    assert "The router failed" in alert.json()["text"] and event["id"] in alert.json()["text"]
    assert "ana.silva" not in alert.body.decode()

    assert replayed.exit_code == 0, (replayed.stdout, replayed.stderr)
    assert re.search(r"\(router\) +FAILED +done", replayed.stdout)
    described = await client.get_workflow_handle(event["id"]).describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert described.run_id != handle.result_run_id
    # The replayed router ran the event's reactions: the activity log got it.
    assert [r.json()["id"] for r in fakes.event_log.succeeded()] == [event["id"]]
    assert redelivered["status"] == "duplicate"
    assert still_listed["failed"] == []
