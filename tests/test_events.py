"""The event model: lenient, typed where it knows, keeping what it does not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from core.events import ActorType, LikeMagicEvent, ObjectType, Topic
from tests.conftest import EXAMPLES


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_sample_event_parses_with_a_known_topic(path):
    event = LikeMagicEvent.model_validate_json(path.read_text())
    assert event.known_topic is not None
    assert event.extra_fields == {}


def test_known_fields_are_typed():
    event = LikeMagicEvent.model_validate(
        json.loads((EXAMPLES / "reservation_created.json").read_text())
    )
    assert event.object_type is ObjectType.RESERVATION
    assert event.actor_type is ActorType.PRINCIPAL
    assert event.timestamp == datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
    assert event.known_topic is Topic.RESERVATION_CREATED


def test_unknown_values_and_fields_are_kept_and_serialized_back():
    raw = {
        "id": "e-1",
        "topic": "HOVERCRAFT_DOCKED",
        "objectType": "HOVERCRAFT",
        "actorType": "ROBOT",
        "timestamp": "yesterday-ish",
        "pmsPropertyId": 77,
        "context": None,
        "futureField": [1, 2],
    }
    event = LikeMagicEvent.model_validate(raw)
    assert event.known_topic is None
    assert event.extra_fields == {"futureField": [1, 2]}
    dumped = json.loads(event.model_dump_json())
    assert dumped["objectType"] == "HOVERCRAFT"
    assert dumped["actorType"] == "ROBOT"
    assert dumped["timestamp"] == "yesterday-ish"
    assert dumped["pmsPropertyId"] == "77"
    assert dumped["context"] == {}
    assert dumped["futureField"] == [1, 2]


def test_canceled_spelling_is_cancelled():
    event = LikeMagicEvent.model_validate({"id": "e", "topic": "RESERVATION_CANCELED"})
    assert event.known_topic is Topic.RESERVATION_CANCELLED


def test_every_documented_topic_is_known():
    # The 54 topics of the platform's TopicEnum.
    assert len(Topic) == 54
    assert Topic("TENANT_CONFIG_UPDATED") and Topic("RESERVATION_PRECHECKOUT_FLOW_COMPLETED")


@pytest.mark.parametrize(
    "raw",
    [
        {"topic": "TASK_CREATED"},
        {"id": "", "topic": "TASK_CREATED"},
        {"id": 5, "topic": "TASK_CREATED"},
        {"id": "-leading-dash", "topic": "TASK_CREATED"},
        {"id": "x\n", "topic": "TASK_CREATED"},
        {"id": "x"},
        {"id": "x", "topic": None},
        {"id": "x", "topic": "TASK_CREATED", "context": [1]},
    ],
)
def test_unusable_events_are_refused(raw):
    with pytest.raises(ValidationError):
        LikeMagicEvent.model_validate(raw)
