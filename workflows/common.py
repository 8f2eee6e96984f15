"""Helpers every reaction uses: reading event context defensively, calling integrations."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator
from temporalio import workflow

from core.guest import guest_in_context
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from zoneinfo import ZoneInfo

    from activities.email import EmailActivities, EmailRequest
    from activities.policy import (
        INTEGRATION_HEARTBEAT_TIMEOUT,
        INTEGRATION_RETRY_POLICY,
        INTEGRATION_SCHEDULE_TO_CLOSE,
        INTEGRATION_START_TO_CLOSE,
        Delivery,
    )

# Keyword arguments for every integration activity call (see activities/policy.py).
INTEGRATION_CALL: dict[str, Any] = {
    "start_to_close_timeout": INTEGRATION_START_TO_CLOSE,
    "schedule_to_close_timeout": INTEGRATION_SCHEDULE_TO_CLOSE,
    "heartbeat_timeout": INTEGRATION_HEARTBEAT_TIMEOUT,
    "retry_policy": INTEGRATION_RETRY_POLICY,
}


def text(value: Any) -> str | None:
    """A non-empty string or number as text; anything else (None, {}, [], bool) as None."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        shown = str(value).strip()
        return shown or None
    return None


def number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def nested(context: dict[str, Any], *path: str) -> Any:
    value: Any = context
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def aware(value: datetime) -> datetime:
    """An instant without an offset is UTC (never the worker host's zone)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# A datetime field of a workflow's state: always aware, whatever was stored.
Instant = Annotated[datetime, AfterValidator(aware)]


def instant(value: Any, zone: str = "UTC") -> datetime | None:
    """An aware instant from an event's value, or None when it is not one.

    An ISO instant without an offset is UTC. A date alone ("2026-12-10") is a local
    date of the property: the start of that day in ``zone`` (its IANA time zone).
    """
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, date):
        return wall_clock(value, time(0), zone)
    if not isinstance(value, str):
        return None
    value = value.strip()
    try:
        return wall_clock(date.fromisoformat(value), time(0), zone)
    except ValueError:
        pass
    try:
        return aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def in_zone(at: datetime, zone: str) -> datetime:
    """``at`` in the IANA time zone ``zone`` (e.g. Europe/Zurich).

    zoneinfo reads the tz database from disk, which is deterministic for a given
    tzdata; the worker's sandbox (worker.WORKFLOW_RUNNER) lets ZoneInfo through.
    """
    return at.astimezone(ZoneInfo(zone))


def wall_clock(day: date, at: time, zone: str) -> datetime:
    """The instant when clocks in ``zone`` show ``at`` on ``day``."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone))


def recipient(context: dict[str, Any]) -> str | None:
    """The guest's address: `guestEmail`, else `primaryGuest.email`."""
    return guest_in_context(context).email


def guest_name(context: dict[str, Any]) -> str | None:
    """`guestName`, else `primaryGuest.firstName lastName`."""
    return guest_in_context(context).name


def shorten(value: str, limit: int) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


async def send_guest_email(request: EmailRequest, served_by: str = "") -> ReactionResult:
    """Send a reaction's email with the integration policy; ``served_by`` (which source
    gave the guest) is added to the outcome."""
    delivery = await workflow.execute_activity_method(
        EmailActivities.send_email, request, **INTEGRATION_CALL
    )
    delivery.served_by = served_by
    return result_of(delivery)


def result_of(delivery: Delivery) -> ReactionResult:
    """A reaction's outcome of one delivery, naming the guest's source if it has one."""
    if delivery.status == "skipped":
        result = ReactionResult.skipped(delivery.detail)
    else:
        result = ReactionResult.done(f"{delivery.detail} via {delivery.provider}".strip())
    if delivery.served_by:
        result.detail = (
            f"{result.detail} ({delivery.served_by})" if result.detail else delivery.served_by
        )
    return result


def results_of(deliveries: list[Delivery]) -> ReactionResult:
    """One outcome of a reaction's deliveries: skipped when every one was (naming each
    reason), else done, naming each."""
    if len(deliveries) == 1:
        return result_of(deliveries[0])
    parts = [
        f"skipped: {d.detail}" if d.status == "skipped" else result_of(d).detail for d in deliveries
    ]
    if all(d.status == "skipped" for d in deliveries):
        return ReactionResult.skipped("; ".join(parts))
    return ReactionResult.done("; ".join(parts))
