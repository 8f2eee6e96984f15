"""POST /webhooks/likemagic against a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from temporalio.client import WorkflowExecutionStatus

from core.logging import JsonFormatter
from core.temporal import OBJECT_ID, OBJECT_TYPE, PMS_PROPERTY_ID, TOPIC
from tests.conftest import sample
from tests.helpers import SECRET, running_reactor, unique


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


async def test_accepted_starts_router_with_event_id_and_search_attributes(temporal_env, tmp_path):
    event = unique(sample("task_created"))
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        response = await reactor.post(event)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "accepted"
        assert body["eventId"] == body["workflowId"] == event["id"]
        assert body["runId"]
        result = await reactor.routed(event["id"])

    assert result.event_id == event["id"]
    assert result.topic == "TASK_CREATED"
    described = await reactor.router(event["id"]).describe()
    assert described.run_id == body["runId"]
    assert described.workflow_type == "EventRouter"
    attrs = described.typed_search_attributes
    assert attrs.get(TOPIC) == "TASK_CREATED"
    assert attrs.get(OBJECT_TYPE) == "TASK"
    assert attrs.get(OBJECT_ID) == event["objectId"]
    assert attrs.get(PMS_PROPERTY_ID) == "PROP-ZRH-01"


async def test_event_reaches_the_workflow_whole_with_unknown_fields(temporal_env, tmp_path):
    event = unique(sample("task_created"), brandNewField={"kept": True}, objectType="SPACESHIP")
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        assert (await reactor.post(event)).json()["status"] == "accepted"
        await reactor.routed(event["id"])
        history = await reactor.router(event["id"]).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    # Encrypted in the history; the codec gives back what the webhook sent.
    [payload] = await temporal_env.client.data_converter.payload_codec.decode(
        started.input.payloads
    )
    received = json.loads(payload.data)
    assert received["brandNewField"] == {"kept": True}
    assert received["objectType"] == "SPACESHIP"
    assert received["context"] == event["context"]


async def test_same_event_twice_is_a_duplicate(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_out"))
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        first = await reactor.post(event)
        second = await reactor.post(event)
    assert first.json()["status"] == "accepted"
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["workflowId"] == event["id"]
    assert second.json()["runId"] == first.json()["runId"]


async def test_redelivery_after_the_workflow_closed_is_a_duplicate(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_out"))
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        assert (await reactor.post(event)).json()["status"] == "accepted"
        await reactor.routed(event["id"])
        again = await reactor.post(event)
    assert again.json()["status"] == "duplicate"


async def test_twenty_concurrent_deliveries_make_one_workflow(temporal_env, tmp_path):
    event = unique(sample("reservation_created"))
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        responses = await asyncio.gather(*(reactor.post(event) for _ in range(20)))
    assert all(r.status_code == 200 for r in responses)
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert len({r.json()["runId"] for r in responses}) == 1
    runs = [w async for w in temporal_env.client.list_workflows(f'WorkflowId = "{event["id"]}"')]
    # Visibility is eventually consistent; whatever it lists is one run.
    assert len({w.run_id for w in runs}) <= 1


async def test_missing_and_wrong_secret_are_401_and_start_nothing(temporal_env, tmp_path):
    event = unique(sample("reservation_created"))
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        missing = await reactor.post(event, secret=None)
        wrong = await reactor.post(event, secret="not-the-secret")
        empty = await reactor.post(event, secret="")
        # Still accepted afterwards: nothing was started by the refused posts.
        right = await reactor.post(event)
    assert "missing" in assert_error(missing, 401, "unauthorized")["message"]
    assert "does not match" in assert_error(wrong, 401, "unauthorized")["message"]
    assert_error(empty, 401, "unauthorized")
    assert right.json()["status"] == "accepted"


async def test_second_secret_is_accepted_while_rotating(temporal_env, tmp_path):
    rotating = f"{SECRET},next-secret-abcdefghijklmnop"
    async with running_reactor(
        temporal_env.client, tmp_path, worker=False, WEBHOOK_SECRET=rotating
    ) as reactor:
        old = await reactor.post(unique(sample("task_created")), secret=SECRET)
        new = await reactor.post(
            unique(sample("task_created")), secret="next-secret-abcdefghijklmnop"
        )
        both = await reactor.post(unique(sample("task_created")), secret=rotating)
    assert old.json()["status"] == "accepted"
    assert new.json()["status"] == "accepted"
    assert_error(both, 401, "unauthorized")


async def test_invalid_json_is_400(temporal_env, tmp_path):
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        response = await reactor.post(
            b'{"id": "x", "topic": ', **{"content-type": "application/json"}
        )
    assert "not valid JSON" in assert_error(response, 400, "invalid_json")["message"]


async def test_events_without_a_usable_id_or_topic_are_422(temporal_env, tmp_path):
    base = sample("task_created")
    cases = {
        "no id": ({k: v for k, v in base.items() if k != "id"}, "id"),
        "empty id": ({**base, "id": ""}, "id"),
        "numeric id": ({**base, "id": 12345}, "id"),
        "id with slash": ({**base, "id": "a/b"}, "id"),
        "id with space": ({**base, "id": "a b"}, "id"),
        "id too long": ({**base, "id": "a" * 201}, "id"),
        "no topic": ({k: v for k, v in base.items() if k != "topic"}, "topic"),
        "empty topic": ({**base, "id": str(uuid.uuid4()), "topic": ""}, "topic"),
        "topic not a string": ({**base, "id": str(uuid.uuid4()), "topic": ["X"]}, "topic"),
    }
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        for name, (event, field) in cases.items():
            error = assert_error(await reactor.post(event), 422, "invalid_event")
            assert field in [d["field"] for d in error["details"]], name
        not_object = await reactor.post([base])
    assert "JSON object" in assert_error(not_object, 422, "invalid_event")["message"]


async def test_body_over_the_limit_is_413(temporal_env, tmp_path):
    event = unique(sample("task_created"))
    event["context"]["padding"] = "x" * 5000
    async with running_reactor(
        temporal_env.client, tmp_path, worker=False, WEBHOOK_MAX_BODY_BYTES=4096
    ) as reactor:
        response = await reactor.post(event)
        small = await reactor.post(unique(sample("task_created")))
    assert "4096" in assert_error(response, 413, "payload_too_large")["message"]
    assert small.json()["status"] == "accepted"


async def test_unknown_topic_is_accepted_and_routes_to_nothing(temporal_env, tmp_path):
    event = unique(sample("task_created"), topic="SPACESHIP_LANDED")
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        assert (await reactor.post(event)).json()["status"] == "accepted"
        result = await reactor.routed(event["id"])
        described = await reactor.router(event["id"]).describe()
    # Only the catch-all activity log could react, and it is not configured here:
    # listed as skipped with the reason, and nothing was started.
    assert [(o.reaction, o.status, o.workflow_id) for o in result.reactions] == [
        ("activity-log", "skipped", "")
    ]
    assert "EVENT_LOG_URL" in result.reactions[0].detail
    assert described.status == WorkflowExecutionStatus.COMPLETED


async def test_canceled_spelling_is_read_as_cancelled(temporal_env, tmp_path):
    event = unique(sample("reservation_cancelled"), topic="RESERVATION_CANCELED")
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        await reactor.post(event)
        result = await reactor.routed(event["id"])
    assert result.topic == "RESERVATION_CANCELLED"


async def test_one_log_line_per_request_without_secret_or_guest_data(
    temporal_env, tmp_path, caplog
):
    event = unique(sample("reservation_checked_in"))
    caplog.set_level(logging.INFO)
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        await reactor.post(event)
        await reactor.post(event, secret="wrong-" + SECRET)
        await reactor.routed(event["id"])
    lines = [JsonFormatter().format(r) for r in caplog.records]
    webhook = [json.loads(line) for line in lines if '"msg": "webhook"' in line]
    assert [w["outcome"] for w in webhook] == ["accepted", "unauthorized"]
    assert webhook[0]["event_id"] == event["id"]
    assert webhook[0]["topic"] == "RESERVATION_CHECKED_IN"
    assert webhook[0]["status"] == 200
    assert isinstance(webhook[0]["latency_ms"], float)
    everything = "\n".join(lines)
    for private in (SECRET, "ana.silva@example.com", "Ana Silva"):
        assert private not in everything


async def test_health_and_readiness(temporal_env, tmp_path):
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        assert (await reactor.http.get("/healthz")).json() == {"status": "ok"}
        ready = await reactor.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "temporal": "ok",
        "intake": {"depth": 0, "oldestAgeSeconds": 0.0},
    }


async def test_unknown_route_has_the_same_error_shape(temporal_env, tmp_path):
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        response = await reactor.http.get("/nowhere")
    assert_error(response, 404, "not_found")


def test_api_refuses_to_start_without_a_secret(tmp_path):
    import pytest

    from api.app import create_app
    from tests.helpers import make_settings

    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        create_app(make_settings(tmp_path, WEBHOOK_SECRET=""))
    with pytest.raises(ValueError, match="weak"):
        create_app(make_settings(tmp_path, WEBHOOK_SECRET="changeme"))
    # In development a short secret is fine (the dev launcher generates long ones anyway).
    create_app(make_settings(tmp_path, WEBHOOK_SECRET="changeme", REACTOR_ENV="development"))
