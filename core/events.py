"""The LIKE MAGIC business event envelope.

Lenient on purpose: every event we reject costs the subscription a failed
delivery, so only ``id`` and ``topic`` are required. Known fields are typed but
optional, unknown enum values are kept as plain strings, and unknown extra
fields are kept and passed on to the workflows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

# Workflow IDs are built from the event id (`<id>`, `<id>/<reaction>`), so the id
# must be short and free of separators, whitespace and control characters.
EVENT_ID_MAX_LENGTH = 200
EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*")

# What the webhook refuses (422) because Temporal, or the worker, could not hold it,
# so that no event answered 200 can get stuck:
# - ids (objectId, actorId, pmsPropertyId, ...) become search attributes (at most 2,048
#   bytes each) and workflow IDs (`journey-<objectId>`, at most 1,000 characters);
ID_MAX_LENGTH = 200
# - nesting: the worker's JSON decoder stops at a few hundred levels, Python's at ~1,000;
MAX_NESTING = 64
# - size of the event as Temporal stores it: under its 2 MB payload limit, and small
#   enough that a router starting several reactions at once, each with the event, stays
#   under the 4 MB limit of one gRPC message.
MAX_EVENT_BYTES = 512 * 1024


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded JSON value (a scalar: 0)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


class Topic(StrEnum):
    """Every topic the platform documents (TopicEnum)."""

    ACCOUNT_NOTIFICATION_FAILED = "ACCOUNT_NOTIFICATION_FAILED"
    ACCOUNT_NOTIFICATION_SENT = "ACCOUNT_NOTIFICATION_SENT"
    BOOKING_CREATED = "BOOKING_CREATED"
    BOOKING_UPDATED = "BOOKING_UPDATED"
    BOOKING_IBE_SUCCESS = "BOOKING_IBE_SUCCESS"
    BOOKING_IBE_FAILED = "BOOKING_IBE_FAILED"
    BOOKING_NOTIFICATION_SENT = "BOOKING_NOTIFICATION_SENT"
    BOOKING_NOTIFICATION_FAILED = "BOOKING_NOTIFICATION_FAILED"
    CONVERSATION_CREATED = "CONVERSATION_CREATED"
    CONVERSATION_RESOLVED = "CONVERSATION_RESOLVED"
    CONVERSATION_UPDATED = "CONVERSATION_UPDATED"
    DOOR_OPEN_FAILED = "DOOR_OPEN_FAILED"
    DOOR_OPEN_SUCCESS = "DOOR_OPEN_SUCCESS"
    GATEWAY_CONNECTION_LOST = "GATEWAY_CONNECTION_LOST"
    GATEWAY_CONNECTION_RESTORED = "GATEWAY_CONNECTION_RESTORED"
    LOCK_CONNECTION_LOST = "LOCK_CONNECTION_LOST"
    LOCK_CONNECTION_RESTORED = "LOCK_CONNECTION_RESTORED"
    FOLIO_CREATED = "FOLIO_CREATED"
    FOLIO_UPDATED = "FOLIO_UPDATED"
    MAGIC_PROMO_CODE_CREATED = "MAGIC_PROMO_CODE_CREATED"
    MAGIC_PROMO_CODE_DELETED = "MAGIC_PROMO_CODE_DELETED"
    MAGIC_PROMO_CODE_UPDATED = "MAGIC_PROMO_CODE_UPDATED"
    MAGIC_PROMO_CODE_USED = "MAGIC_PROMO_CODE_USED"
    MESSAGE_FAILED = "MESSAGE_FAILED"
    MESSAGE_INTERACTION = "MESSAGE_INTERACTION"
    MESSAGE_RECEIVED = "MESSAGE_RECEIVED"
    MESSAGE_SENT = "MESSAGE_SENT"
    PROFILE_CREATED = "PROFILE_CREATED"
    PROFILE_LANGUAGE_UPDATED = "PROFILE_LANGUAGE_UPDATED"
    PROFILE_MERGED = "PROFILE_MERGED"
    PROFILE_UPDATED = "PROFILE_UPDATED"
    RESERVATION_ACTION_FAILED = "RESERVATION_ACTION_FAILED"
    RESERVATION_ACTION_SUCCESS = "RESERVATION_ACTION_SUCCESS"
    RESERVATION_CANCELLED = "RESERVATION_CANCELLED"
    RESERVATION_CHECKED_IN = "RESERVATION_CHECKED_IN"
    RESERVATION_CHECKED_OUT = "RESERVATION_CHECKED_OUT"
    RESERVATION_CONDITION_UPDATED = "RESERVATION_CONDITION_UPDATED"
    RESERVATION_CREATED = "RESERVATION_CREATED"
    RESERVATION_DOOR_ACCESS_SYNC_FAILED = "RESERVATION_DOOR_ACCESS_SYNC_FAILED"
    RESERVATION_DOOR_ACCESS_SYNC_SUCCESS = "RESERVATION_DOOR_ACCESS_SYNC_SUCCESS"
    RESERVATION_DOOR_OPEN_FAILED = "RESERVATION_DOOR_OPEN_FAILED"
    RESERVATION_DOOR_OPEN_SUCCESS = "RESERVATION_DOOR_OPEN_SUCCESS"
    RESERVATION_NOTIFICATION_FAILED = "RESERVATION_NOTIFICATION_FAILED"
    RESERVATION_NOTIFICATION_SENT = "RESERVATION_NOTIFICATION_SENT"
    RESERVATION_NO_SHOW = "RESERVATION_NO_SHOW"
    RESERVATION_PRECHECKIN_FLOW_CHANGED = "RESERVATION_PRECHECKIN_FLOW_CHANGED"
    RESERVATION_PRECHECKIN_FLOW_COMPLETED = "RESERVATION_PRECHECKIN_FLOW_COMPLETED"
    RESERVATION_PRECHECKOUT_FLOW_CHANGED = "RESERVATION_PRECHECKOUT_FLOW_CHANGED"
    RESERVATION_PRECHECKOUT_FLOW_COMPLETED = "RESERVATION_PRECHECKOUT_FLOW_COMPLETED"
    RESERVATION_UPDATED = "RESERVATION_UPDATED"
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_CREATED = "TASK_CREATED"
    TASK_UPDATED = "TASK_UPDATED"
    TENANT_CONFIG_UPDATED = "TENANT_CONFIG_UPDATED"


# Spellings seen in the platform's docs that mean a documented topic.
TOPIC_ALIASES = {"RESERVATION_CANCELED": Topic.RESERVATION_CANCELLED.value}


class ObjectType(StrEnum):
    ACCOUNT = "ACCOUNT"
    BOOKING = "BOOKING"
    CONVERSATION = "CONVERSATION"
    FOLIO = "FOLIO"
    GATEWAY = "GATEWAY"
    LOCK = "LOCK"
    MAGIC_PROMO_CODE = "MAGIC_PROMO_CODE"
    MESSAGE = "MESSAGE"
    PROFILE = "PROFILE"
    RESERVATION = "RESERVATION"
    TASK = "TASK"
    TENANT_CONFIG = "TENANT_CONFIG"
    UNIT = "UNIT"


class ActorType(StrEnum):
    BOOKER = "BOOKER"
    INTEGRATION = "INTEGRATION"
    PRIMARY_GUEST = "PRIMARY_GUEST"
    PRINCIPAL = "PRINCIPAL"
    SECONDARY_GUEST = "SECONDARY_GUEST"


def normalize_topic(topic: str) -> str:
    """The canonical spelling of a topic; unknown topics pass through unchanged."""
    return TOPIC_ALIASES.get(topic, topic)


class LikeMagicEvent(BaseModel):
    """One business event as the platform POSTs it."""

    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    id: StrictStr = Field(min_length=1, max_length=EVENT_ID_MAX_LENGTH)
    topic: StrictStr = Field(min_length=1, max_length=200)
    object_id: str | None = Field(default=None, alias="objectId")
    object_type: ObjectType | str | None = Field(default=None, alias="objectType")
    actor_id: str | None = Field(default=None, alias="actorId")
    actor_type: ActorType | str | None = Field(default=None, alias="actorType")
    # The documented list of sources is not complete, so it stays a string.
    event_source: str | None = Field(default=None, alias="eventSource")
    pms_property_id: str | None = Field(default=None, alias="pmsPropertyId")
    # Kept as the string the platform sent when it is not a parseable instant.
    timestamp: datetime | str | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_usable_as_workflow_id(cls, value: str) -> str:
        if not EVENT_ID_PATTERN.fullmatch(value):
            raise ValueError(
                "id may hold only letters, digits and . _ : @ - and must start with a "
                "letter or digit (it becomes the Temporal workflow ID)"
            )
        return value

    @field_validator("topic")
    @classmethod
    def _canonical_topic(cls, value: str) -> str:
        return normalize_topic(value.strip())

    @field_validator("object_id", "actor_id", "pms_property_id", "event_source", mode="before")
    @classmethod
    def _ids_as_strings(cls, value: Any) -> Any:
        # Numeric ids are still ids: keep them rather than bounce the event.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator(
        "object_id", "object_type", "actor_id", "actor_type", "pms_property_id", "event_source"
    )
    @classmethod
    def _short_enough_for_temporal(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > ID_MAX_LENGTH:
            raise ValueError(
                f"longer than {ID_MAX_LENGTH} characters (it becomes a Temporal search "
                "attribute or workflow ID)"
            )
        return value

    @field_validator("object_type", mode="before")
    @classmethod
    def _known_object_type(cls, value: Any) -> Any:
        return (
            ObjectType(value)
            if isinstance(value, str) and value in ObjectType.__members__
            else value
        )

    @field_validator("actor_type", mode="before")
    @classmethod
    def _known_actor_type(cls, value: Any) -> Any:
        return (
            ActorType(value) if isinstance(value, str) and value in ActorType.__members__ else value
        )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _parse_instant(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if isinstance(value, datetime) and value.tzinfo is None:
            # Without an offset, UTC: never the zone of whichever host reads it.
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _null_context_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def known_topic(self) -> Topic | None:
        """The topic as a ``Topic``, or None when the platform sent a newer one."""
        try:
            return Topic(self.topic)
        except ValueError:
            return None

    @property
    def extra_fields(self) -> dict[str, Any]:
        """Fields the envelope does not document, kept as they came."""
        return dict(self.model_extra or {})
