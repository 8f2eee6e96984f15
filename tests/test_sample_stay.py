"""The sample stay, end to end: each sample event through the webhook, exactly its effects."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import yaml

from activities.email import format_day as day
from tests.conftest import sample
from tests.helpers import (
    by_name,
    query_until,
    running_reactor,
    shifted,
    unique,
    until,
    weeks_ahead,
)
from tests.integrations import SUPPORT_ADDRESS, integrations
from workflows.guest_journey import JourneyState
from workflows.housekeeping import AssignmentState
from workflows.router import ROUTER_WORKFLOW


async def journey_state(reactor, reservation_id: str, until=lambda s: True) -> JourneyState:
    handle = reactor.client.get_workflow_handle(f"journey-{reservation_id}")
    return await query_until(handle, JourneyState, until, f"journey {reservation_id}")


async def listed(reactor, event: dict) -> bool:
    """Visibility lists the event's router under its object and topic (what reactions
    that look up an earlier event query)."""
    query = (
        f'WorkflowType = "{ROUTER_WORKFLOW}" AND ObjectId = "{event["objectId"]}" '
        f'AND Topic = "{event["topic"]}"'
    )
    return (await reactor.client.count_workflows(query)).count >= 1


STAY = [
    "reservation_created",
    "profile_updated",
    "reservation_checked_in",
    "message_received",
    "reservation_checked_out",
    "task_created",
    "task_completed",
    "reservation_cancelled",
]


ROSTER = Path(__file__).resolve().parent.parent / "examples" / "housekeeping-roster.yaml"


def stay_events(ahead: timedelta) -> dict[str, dict]:
    """The events of the stay, ``ahead`` in time, with fresh ids; the objects
    (reservations, the task) fresh too but shared within the stay, as on the platform:
    each has one long-running workflow."""
    suffix = uuid.uuid4().hex[:8]
    events = {}
    for name in STAY:
        event = shifted(unique(sample(name)), ahead)
        if event["objectType"] in ("RESERVATION", "TASK"):
            event["objectId"] = f"{sample(name)['objectId']}-{suffix}"
        events[name] = event
    return events


def quiet_until(at: datetime, quiet: str) -> datetime:
    """When a message due at ``at`` (UTC) goes out under the quiet hours ``quiet``."""
    if not quiet:
        return at
    start, end = (time.fromisoformat(t) for t in quiet.split("-"))
    inside = (start <= at.time() < end) if start <= end else not (end <= at.time() < start)
    if not inside:
        return at
    held = at.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    return held if held > at else held + timedelta(days=1)


async def test_every_sample_event_has_exactly_its_effects(temporal_env, tmp_path, clock):
    # The dev server runs on the real clock: the test pins what the hour would decide
    # (quiet hours over now, or none; every shift over now, or none: see tests/clock.py).
    now = datetime.now(UTC)
    roster = yaml.safe_load(ROSTER.read_text())
    for person in roster["staff"]:
        person["shift"] = clock.shift(now, roster["timezone"])
    (tmp_path / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    quiet = clock.quiet_hours(now, "UTC")  # no PROPERTY_TIMEZONES: the property's zone is UTC
    ahead = weeks_ahead()
    events = stay_events(ahead)
    with integrations() as fakes:
        settings = {
            **fakes.settings(),
            "HOUSEKEEPING_ROSTER": str(tmp_path / "roster.yaml"),
            "JOURNEY_QUIET_HOURS": quiet,
        }
        async with running_reactor(temporal_env.client, tmp_path, **settings) as reactor:
            results = {}
            for name in STAY:
                answer = await reactor.post(events[name])
                assert answer.json()["status"] == "accepted", name
                results[name] = by_name(await reactor.routed(events[name]["id"]))
                # The team notice of the TASK_COMPLETED finds the TASK_CREATED through
                # visibility, which lags behind (seconds on a loaded machine): the next
                # event comes once this one is listed, as minutes apart on the platform.
                await until(lambda e=events[name]: listed(reactor, e), f"{name} listed")

            assignment = reactor.client.get_workflow_handle(
                f"housekeeping-{events['task_created']['objectId']}", result_type=AssignmentState
            )
            housekeeping = await assignment.result()
            journey = await journey_state(reactor, events["reservation_created"]["objectId"])
            cancelled_journey = await journey_state(
                reactor,
                events["reservation_cancelled"]["objectId"],
                until=lambda s: s.completed,
            )

    # Every reaction that ran, succeeded; the activity log saw every event.
    cancelled = results["reservation_cancelled"].pop("housekeeping")
    assert (cancelled.status, cancelled.detail) == (
        "skipped",
        "no open housekeeping assignment for this reservation",
    )
    # The sample profile (prof-902211) is not the stay's userProfileId: no journey to tell.
    refresh = results["profile_updated"].pop("profile-refresh")
    assert (refresh.status, refresh.detail) == ("skipped", "no running journey for this profile")
    for name, outcomes in results.items():
        assert all(o.status == "done" for o in outcomes.values()), (name, outcomes)
    # The check-in is the platform's thin one: its guest comes from the reservation's
    # journey, which holds the RESERVATION_CREATED's primaryGuest.
    assert results["reservation_checked_in"]["welcome-email"].detail == (
        "welcome email via sendgrid (guest from the reservation's journey)"
    )
    assert {name: sorted(o) for name, o in results.items()} == {
        "reservation_created": ["activity-log", "booking-confirmation", "guest-journey"],
        "profile_updated": ["activity-log", "crm-sync"],
        "reservation_checked_in": ["activity-log", "guest-journey", "welcome-email"],
        "message_received": ["activity-log", "support-alert"],
        "reservation_checked_out": ["activity-log", "guest-journey"],
        "task_created": ["activity-log", "housekeeping"],
        "task_completed": ["activity-log", "housekeeping", "team-notice"],
        "reservation_cancelled": ["activity-log", "guest-journey"],
    }

    # The journey of the stay: checked out, its review request waiting for its time
    # (the sample stay lies in the future); the pre-arrival and mid-stay messages
    # dropped when the guest moved on before they were due.
    assert journey.stage == "checked_out"
    assert {k: m.status for k, m in journey.messages.items()} == {
        "pre_arrival": "dropped",
        "mid_stay": "dropped",
        "review_request": "scheduled",
        "cancellation": "pending",
    }
    review_due = datetime(2026, 12, 13, 15, 58, 30, tzinfo=UTC) + ahead
    assert journey.messages["review_request"].due == quiet_until(review_due, quiet)
    # The other reservation's cancellation: a confirmation, never held by the quiet
    # hours; the journey ends at once (its event carries no guest address).
    assert cancelled_journey.stage == "cancelled"
    assert cancelled_journey.messages["cancellation"].status == "skipped"
    assert "no guest email" in cancelled_journey.messages["cancellation"].detail

    # Housekeeping: by day the cleaning was assigned (floor 4: Inês, first on the
    # roster) and she was told; at night it waited for the shift and was done before.
    assert housekeeping.status == "completed"
    assert housekeeping.completed_by == "hk-ines"
    assert housekeeping.took_minutes == 43
    emails = [r.json() for r in fakes.sendgrid.requests]
    if clock.night:
        assert housekeeping.assignee is None
        assert [h.step for h in housekeeping.history if h.step.startswith("waiting")] == [
            "waiting for shift"
        ]
    else:
        assert housekeeping.assignee and housekeeping.assignee.id == "hk-ines"
        notice = emails.pop(3)
        assert notice["subject"] == "New task for you: Departure cleaning room 412 (U-412)"
        assert notice["personalizations"][0]["to"][0]["email"] == "ines.duarte@hotel.example"

    # Email: confirmation and welcome to the guest, the alert to support.
    assert [(m["personalizations"][0]["to"][0]["email"], m["subject"]) for m in emails] == [
        (
            "ana.silva@example.com",
            f"Your booking at PROP-ZRH-01 is confirmed: {day(datetime(2026, 12, 10) + ahead)}",
        ),
        ("ana.silva@example.com", "Welcome, Ana Silva!"),
        (SUPPORT_ADDRESS, "Guest message from Ana Silva (RES-48213-1)"),
    ]
    support_text = next(c["value"] for c in emails[2]["content"] if c["type"] == "text/plain")
    assert "Could we get two extra pillows in room 412?" in support_text

    # CRM: the changed profile fields, with the event's idempotency key.
    [crm] = fakes.crm.requests
    assert (crm.method, crm.path) == ("PATCH", "/api/profiles/prof-902211")
    assert crm.json() == {
        "email": "ana.silva@example.com",
        "preferredLanguage": "pt",
        "phone": "+41791112233",
    }
    assert crm.header("Idempotency-Key") == f"likemagic-{events['profile_updated']['id']}"
    assert crm.header("Authorization") == "Bearer crm-token"

    # Slack: the guest's words to support, the finished cleaning to operations.
    [support] = fakes.slack_support.requests
    assert "Could we get two extra pillows in room 412?" in support.json()["text"]
    assert "RES-48213-1" in support.json()["text"]
    [notice] = fakes.slack_ops.requests
    expected = "Task done: Departure cleaning room 412 (unit U-412) by hk-ines in 43 min"
    assert notice.json()["text"] == expected

    # Activity log: every event, as sent, once each.
    logged = fakes.event_log.requests
    assert [r.json()["id"] for r in logged] == [events[name]["id"] for name in STAY]
    assert all(r.header("Idempotency-Key") == r.json()["id"] for r in logged)
    assert all(r.header("Authorization") == "Bearer lt" for r in logged)
    assert logged[0].json() == {**events["reservation_created"]}
