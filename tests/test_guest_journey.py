"""Guest journeys on the time-skipping test server: weeks of a stay in seconds. Events go
through the real webhook, router and delivery activity; emails reach a fake SendGrid."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.events import LikeMagicEvent
from core.guest import Guest
from core.temporal import PROFILE_ID
from tests.clock import Clock, pin
from tests.conftest import sample
from tests.fakes import Reply
from tests.helpers import (
    query_until,
    record_history,
    running_reactor,
    skip_until,
    unique,
    worker_for,
)
from tests.integrations import integrations
from workflows.guest_journey import SCHEMA_VERSION, JourneyState, restore

ZURICH = ZoneInfo("Europe/Zurich")
SUBJECTS = {
    "pre_arrival": "See you on",
    "mid_stay": "How is your stay",
    "review_request": "Thank you for staying",
    "cancellation": "is cancelled",
}


def local(day: datetime, hour: int, minute: int = 0) -> datetime:
    """``hour``:``minute`` in Zurich on ``day``'s date, as a UTC instant."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZURICH).astimezone(UTC)


def near(actual: datetime | None, expected: datetime) -> bool:
    """Sent at the expected instant (the workflow task runs a few ms after its timer)."""
    return actual is not None and abs(actual - expected) < timedelta(seconds=2)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Journey:
    """One reservation on the time-skipping server: post its events at given times."""

    def __init__(self, env, reactor, fakes, arrival: datetime, nights: int = 3):
        self.env, self.reactor, self.fakes = env, reactor, fakes
        self.template = unique(sample("reservation_created"))
        self.reservation = self.template["objectId"]
        self.arrival = arrival
        self.departure = local(arrival + timedelta(days=nights), 10)
        self.handle = reactor.client.get_workflow_handle(
            f"journey-{self.reservation}", result_type=JourneyState
        )
        self.posted: list[str] = []

    def event(self, topic: str, at: datetime, **context) -> dict:
        return {
            "id": str(uuid.uuid4()),
            "objectId": self.reservation,
            "objectType": "RESERVATION",
            "topic": topic,
            "pmsPropertyId": "PROP-ZRH-01",
            "timestamp": iso(at),
            "context": context,
        }

    def created(self, at: datetime, arrival=None, departure=None) -> dict:
        return {
            **self.template,
            "id": str(uuid.uuid4()),
            "timestamp": iso(at),
            "context": {
                **self.template["context"],
                "arrival": iso(arrival or self.arrival),
                "departure": iso(departure or self.departure),
            },
        }

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def skip_to(self, at: datetime) -> None:
        await skip_until(self.env, at)

    async def post(self, event: dict, at: datetime | None = None) -> None:
        if at is not None:
            await self.skip_to(at)
        answer = await self.reactor.post(event)
        assert answer.status_code == 200, answer.text
        self.posted.append(event["id"])
        await self.until(lambda s: event["id"] in s.events_applied, f"{event['topic']} applied")

    async def state(self) -> JourneyState:
        return await self.handle.query("state", result_type=JourneyState)

    async def until(self, check, what: str) -> JourneyState:
        return await query_until(self.handle, JourneyState, check, what)

    async def settle(self) -> None:
        with self.env.auto_time_skipping_disabled():
            for event_id in self.posted:
                await self.reactor.routed(event_id)

    async def finished(self) -> JourneyState:
        await self.settle()
        with self.env.auto_time_skipping_disabled():
            return await self.handle.result()

    def journey_emails(self) -> list[str]:
        subjects = [r.json()["subject"] for r in self.fakes.sendgrid.succeeded()]
        return [kind for s in subjects for kind, text in SUBJECTS.items() if text in s]


@asynccontextmanager
async def journey(skipping_env, tmp_path, fakes, clock: Clock | None, **overrides):
    """A reactor for journeys, its test starting at 12:00 in Zurich whenever it runs;
    the quiet hours are those of the ``clock`` case at that instant (tests/clock.py),
    unless the test sets its own."""
    start = await pin(skipping_env, 12, 0, "Europe/Zurich")
    settings = {
        "SENDGRID_API_KEY": "SG.test",
        "SENDGRID_HOST": fakes.sendgrid.url,
        "PROPERTY_TIMEZONES": '{"PROP-ZRH-01": "Europe/Zurich"}',
        # Only the journey matters here (and the confirmation / welcome emails).
        "REACTOR_DISABLED_REACTIONS": "housekeeping",
        **({"JOURNEY_QUIET_HOURS": clock.quiet_hours(start, "Europe/Zurich")} if clock else {}),
        **overrides,
    }
    async with running_reactor(skipping_env.client, tmp_path, **settings) as reactor:
        yield reactor


async def patch_markers(handle) -> list[str]:
    """The patch markers in the history of the handle's run (the latest)."""
    return [
        e.marker_recorded_event_attributes.marker_name
        async for e in handle.fetch_history_events()
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


async def next_week(env) -> datetime:
    now = await env.get_current_time()
    return local(now + timedelta(days=7), 14)


async def test_a_whole_stay_sends_each_message_at_its_local_time(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, clock) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            await j.post(j.created(await j.now()))
            state = await j.state()
            pre_arrival_at = local(arrival - timedelta(days=3), 10)
            assert state.messages["pre_arrival"].due == pre_arrival_at

            await j.skip_to(pre_arrival_at + timedelta(minutes=1))
            await j.until(lambda s: s.messages["pre_arrival"].status == "sent", "pre-arrival")
            await record_history("journey_waiting_for_arrival", j.handle)  # open
            await record_history("journey_shape_2_waiting_for_arrival", j.handle)  # open
            await record_history("journey_shape_3_waiting_for_arrival", j.handle)  # open
            await j.post(j.event("RESERVATION_CHECKED_IN", arrival), at=arrival)
            mid_stay_at = local(arrival + timedelta(days=1), 10)
            await j.skip_to(mid_stay_at + timedelta(minutes=1))
            await j.until(lambda s: s.messages["mid_stay"].status == "sent", "mid-stay")
            await j.post(j.event("RESERVATION_CHECKED_OUT", j.departure), at=j.departure)
            await j.skip_to(j.departure + timedelta(hours=6, minutes=1))
            result = await j.finished()
            if not clock.night:
                await record_history("journey_whole_stay", j.handle)
                await record_history("journey_shape_2_whole_stay", j.handle)
                await record_history("journey_shape_3_whole_stay", j.handle)
            markers = await patch_markers(j.handle)

    assert result.completed and result.stage == "checked_out"
    sent = {k: m.sent_at for k, m in result.messages.items() if m.status == "sent"}
    assert sent.keys() == {"pre_arrival", "mid_stay", "review_request"}
    assert near(sent["pre_arrival"], pre_arrival_at)
    assert near(sent["mid_stay"], mid_stay_at)
    assert near(sent["review_request"], j.departure + timedelta(hours=6))
    assert j.journey_emails() == ["pre_arrival", "mid_stay", "review_request"]
    assert local(arrival, 0).astimezone(ZURICH).hour == 0  # the zone really is Zurich's
    # Started by the router with its shape in the memo: the journey takes its patched
    # branches without a marker or a TemporalChangeVersion upsert.
    assert markers == []


async def test_checked_in_before_created_still_gets_its_mid_stay(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, clock) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            await j.skip_to(arrival)
            await j.post(j.event("RESERVATION_CHECKED_IN", arrival))
            assert (await j.state()).messages["mid_stay"].status == "pending"  # no dates yet
            # The retried RESERVATION_CREATED arrives late, with an older timestamp.
            await j.post(j.created(arrival - timedelta(days=20)))
            state = await j.state()
            await j.settle()

    assert state.stage == "checked_in"  # not moved back to booked
    assert state.messages["pre_arrival"].status == "pending"  # never scheduled
    assert state.messages["mid_stay"].due == local(arrival + timedelta(days=1), 10)


async def test_the_same_event_twice_is_applied_once(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, clock) as reactor:
            j = Journey(skipping_env, reactor, fakes, await next_week(skipping_env))
            created = j.created(await j.now())
            await j.post(created)
            assert (await reactor.post(created)).json()["status"] == "duplicate"
            await j.handle.signal("reservation_event", LikeMagicEvent.model_validate(created))
            state = await j.until(lambda s: True, "state")
            await j.settle()
    assert state.events_applied == [created["id"]]


async def test_moved_dates_move_pending_messages_but_never_resend(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, clock) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            now = await j.now()
            await j.post(j.created(now))
            later = arrival + timedelta(days=2)
            await j.post(
                j.event(
                    "RESERVATION_UPDATED",
                    now + timedelta(minutes=5),
                    arrival=iso(later),
                    departure=iso(later + timedelta(days=2)),
                )
            )
            moved_later = (await j.state()).messages["pre_arrival"].due
            earlier = arrival - timedelta(days=1)
            await j.post(
                j.event(
                    "RESERVATION_UPDATED",
                    now + timedelta(minutes=10),
                    arrival=iso(earlier),
                    departure=iso(earlier + timedelta(days=2)),
                )
            )
            moved_earlier = (await j.state()).messages["pre_arrival"].due
            # A stale update (older than the dates it would change) is ignored.
            await j.post(
                j.event(
                    "RESERVATION_UPDATED",
                    now + timedelta(minutes=7),
                    arrival=iso(later),
                    departure=iso(later + timedelta(days=2)),
                )
            )
            after_stale = (await j.state()).messages["pre_arrival"].due
            await j.skip_to(moved_earlier + timedelta(minutes=1))
            await j.until(lambda s: s.messages["pre_arrival"].status == "sent", "sent")
            # Moved again after it was sent: not sent a second time.
            await j.post(
                j.event(
                    "RESERVATION_UPDATED",
                    await j.now(),
                    arrival=iso(later),
                    departure=iso(later + timedelta(days=2)),
                )
            )
            state = await j.state()
            await j.settle()

    assert moved_later == local(later - timedelta(days=3), 10)
    assert moved_earlier == local(earlier - timedelta(days=3), 10)
    assert after_stale == moved_earlier
    assert state.messages["pre_arrival"].status == "sent"
    assert j.journey_emails() == ["pre_arrival"]


async def test_cancellation_before_arrival(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, clock) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            now = await j.now()
            await j.post(j.created(now))
            cancel_at = local(now + timedelta(days=1), 12)
            await j.post(j.event("RESERVATION_CANCELLED", cancel_at), at=cancel_at)
            result = await j.finished()
            await record_history("journey_cancelled_before_arrival", j.handle)

    assert result.stage == "cancelled" and result.completed
    assert result.messages["pre_arrival"].status == "dropped"
    assert result.messages["cancellation"].status == "sent"
    assert near(result.messages["cancellation"].sent_at, cancel_at)
    assert j.journey_emails() == ["cancellation"]


async def test_no_show_cancels_what_is_pending_and_ends(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, clock) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            await j.post(j.created(await j.now()))
            no_show_at = local(arrival + timedelta(days=1), 0, 5)
            await j.post(j.event("RESERVATION_NO_SHOW", no_show_at), at=no_show_at)
            result = await j.finished()

    assert result.stage == "no_show" and result.completed
    assert {k: m.status for k, m in result.messages.items()} == {
        "pre_arrival": "sent",
        "mid_stay": "pending",
        "review_request": "pending",
        "cancellation": "pending",
    }
    assert j.journey_emails() == ["pre_arrival"]


async def test_quiet_hours_hold_a_message_until_morning(skipping_env, tmp_path):
    with integrations() as fakes:
        async with journey(
            skipping_env, tmp_path, fakes, None, JOURNEY_QUIET_HOURS="21:00-08:00"
        ) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival, nights=1)
            await j.post(j.created(await j.now()))
            await j.post(j.event("RESERVATION_CHECKED_IN", arrival), at=arrival)
            checkout = local(j.departure, 16, 30)  # + 6 h = 22:30, inside 21:00-08:00
            await j.post(j.event("RESERVATION_CHECKED_OUT", checkout), at=checkout)
            morning = local(checkout + timedelta(days=1), 8)
            held = await j.state()
            await record_history("journey_held_for_quiet_hours", j.handle)  # open
            await j.skip_to(morning + timedelta(minutes=1))
            result = await j.finished()

    assert held.messages["review_request"].due == morning
    assert near(result.messages["review_request"].sent_at, morning)
    # A one-night stay has no mid-stay message.
    assert result.messages["mid_stay"].status in ("pending", "dropped")
    assert j.journey_emails() == ["pre_arrival", "review_request"]


async def test_continue_as_new_keeps_state_and_loses_no_signal(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(
            skipping_env, tmp_path, fakes, clock, JOURNEY_MAX_HISTORY_EVENTS="100"
        ) as reactor:
            j = Journey(skipping_env, reactor, fakes, await next_week(skipping_env))
            now = await j.now()
            await j.post(j.created(now))
            updates = [
                LikeMagicEvent.model_validate(
                    j.event("RESERVATION_UPDATED", now + timedelta(seconds=i), note=str(i))
                )
                for i in range(120)
            ]
            # Bursts of signals, so some arrive while a continue-as-new is under way.
            for start in range(0, len(updates), 5):
                await asyncio.gather(
                    *(j.handle.signal("reservation_event", u) for u in updates[start : start + 5])
                )
            state = await j.until(
                lambda s: len(s.events_applied) == 121 and s.runs >= 2,
                "all applied, in a continued run",
            )
            first_run = (await j.handle.fetch_history()).events[0]
            memo = await (await j.handle.describe()).memo()
            markers = await patch_markers(j.handle)
            await record_history("journey_continued_as_new", j.handle)  # open, restored
            await record_history("journey_shape_2_continued_as_new", j.handle)
            await record_history("journey_shape_3_continued_as_new", j.handle)
            await j.settle()

    assert state.runs >= 2
    started = first_run.workflow_execution_started_event_attributes
    assert started.continued_execution_run_id  # the latest run continued an earlier one
    assert set(state.events_applied) == {u.id for u in updates} | {j.posted[0]}
    assert state.messages["pre_arrival"].status == "scheduled"
    # The continued run keeps the journey's shape, so it records no patch marker either,
    # and its guest, which reactions read from the memo.
    assert memo.keys() == {"journey_shape", "guest"}
    assert memo["journey_shape"] == 3
    assert Guest.model_validate(memo["guest"]) == Guest(
        name=state.guest_name,
        email=state.guest_email,
        phone=state.guest_phone,
        language=state.guest_language,
        profile_id=state.profile_id,
    )
    assert memo["guest"]["email"]
    assert markers == []


async def test_a_new_worker_picks_up_the_journey(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(
            skipping_env, tmp_path, fakes, clock, worker_options={"max_cached_workflows": 0}
        ) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            await j.post(j.created(await j.now()))
            await j.settle()
        async with worker_for(skipping_env.client, reactor.settings):
            due = local(arrival - timedelta(days=3), 10)
            await j.skip_to(due + timedelta(minutes=1))
            state = await j.until(lambda s: s.messages["pre_arrival"].status == "sent", "sent")
    assert near(state.messages["pre_arrival"].sent_at, due)


async def test_an_update_without_dates_asks_the_pms(skipping_env, tmp_path, clock):
    with integrations() as fakes:
        async with journey(
            skipping_env, tmp_path, fakes, clock, PMS_API_URL=f"{fakes.crm.url}/pms"
        ) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            now = await j.now()
            await j.post(j.created(now))
            later = arrival + timedelta(days=4)
            fakes.crm.default = Reply(
                200, {"arrival": iso(later), "departure": iso(later + timedelta(days=2))}
            )
            await j.post(j.event("RESERVATION_UPDATED", now + timedelta(minutes=1)))
            state = await j.until(lambda s: s.arrival == later, "dates from the PMS")
            await j.settle()

    [lookup] = [r for r in fakes.crm.requests if r.method == "GET"]
    assert lookup.path == f"/pms/reservations/{j.reservation}"
    assert state.messages["pre_arrival"].due == local(later - timedelta(days=3), 10)


async def test_a_cancellation_at_night_is_confirmed_at_once_and_the_journey_ends(
    skipping_env, tmp_path
):
    with integrations() as fakes:
        async with journey(
            skipping_env, tmp_path, fakes, None, JOURNEY_QUIET_HOURS="21:00-08:00"
        ) as reactor:
            j = Journey(skipping_env, reactor, fakes, await next_week(skipping_env))
            await j.post(j.created(await j.now()))
            late = await pin(skipping_env, 23, 45, "Europe/Zurich")
            await j.post(j.event("RESERVATION_CANCELLED", late))
            result = await j.finished()
            await record_history("journey_cancelled_at_night", j.handle)

    assert result.stage == "cancelled" and result.completed
    assert result.messages["cancellation"].status == "sent"
    assert near(result.messages["cancellation"].sent_at, late)  # not held until 08:00
    assert j.journey_emails() == ["cancellation"]


# ----- the calendar: clock changes, month ends, leap days (in Zurich's local time)


def next_date(after: datetime, month: int, day: int) -> datetime:
    """Noon in Zurich on the first ``month``/``day`` at least 10 days after ``after``."""
    year = after.year
    while True:
        try:
            at = local(datetime(year, month, day), 12)
        except ValueError:  # 29 February of a common year
            at = None
        if at is not None and at >= after + timedelta(days=10):
            return at
        year += 1


def last_sunday(year: int, month: int) -> datetime:
    day = datetime(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 6) % 7)


async def whole_stay(j: Journey, arrival: datetime) -> JourneyState:
    """Book well ahead, check in at arrival, check out at departure; every message sent."""
    await j.skip_to(arrival - timedelta(days=6))
    await j.post(j.created(await j.now()))
    await j.skip_to(local(arrival - timedelta(days=3), 10, 1))
    await j.until(lambda s: s.messages["pre_arrival"].status == "sent", "pre-arrival")
    await j.post(j.event("RESERVATION_CHECKED_IN", arrival), at=arrival)
    await j.skip_to(local(arrival + timedelta(days=1), 10, 1))
    await j.until(lambda s: s.messages["mid_stay"].status == "sent", "mid-stay")
    await j.post(j.event("RESERVATION_CHECKED_OUT", j.departure), at=j.departure)
    await j.skip_to(j.departure + timedelta(hours=6, minutes=1))
    return await j.finished()


def sent_locally(state: JourneyState, kind: str) -> datetime:
    sent = state.messages[kind].sent_at
    assert sent is not None, kind
    return sent.astimezone(ZURICH)


@pytest.mark.parametrize("month", [3, 10], ids=["spring-forward", "fall-back"])
async def test_a_stay_across_the_clock_change_keeps_local_hours(skipping_env, tmp_path, month):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None) as reactor:
            now = await skipping_env.get_current_time()
            year = now.year if now < local(last_sunday(now.year, month), 0) else now.year + 1
            if local(last_sunday(year, month), 0) - now < timedelta(days=10):
                year += 1
            change = last_sunday(year, month)
            # Arrive the day before the change: the first night is the one it happens in.
            arrival = local(change - timedelta(days=1), 14)
            j = Journey(skipping_env, reactor, fakes, arrival, nights=3)
            result = await whole_stay(j, arrival)

    pre, mid = sent_locally(result, "pre_arrival"), sent_locally(result, "mid_stay")
    review = sent_locally(result, "review_request")
    assert (pre.date(), pre.hour, pre.minute) == ((change - timedelta(days=4)).date(), 10, 0)
    assert (mid.date(), mid.hour, mid.minute) == (change.date(), 10, 0)
    assert pre.utcoffset() != mid.utcoffset()  # really on both sides of the change
    assert (review.hour, review.minute) == (16, 0)  # checkout at 10:00 + 6 hours


@pytest.mark.parametrize(
    ("month", "day", "mid_stay_day"),
    [(1, 30, (1, 31)), (2, 28, (2, 29))],
    ids=["month-end", "leap-day"],
)
async def test_a_stay_across_a_month_end_or_a_leap_day(
    skipping_env, tmp_path, month, day, mid_stay_day
):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None) as reactor:
            now = await skipping_env.get_current_time()
            arrival = next_date(now, month, day)
            if mid_stay_day == (2, 29):  # a year with a 29 February
                while (arrival.year % 4, arrival.year % 100 == 0) != (0, False):
                    arrival = next_date(arrival + timedelta(days=300), month, day)
            arrival = local(arrival, 14)
            j = Journey(skipping_env, reactor, fakes, arrival, nights=3)
            result = await whole_stay(j, arrival)

    mid = sent_locally(result, "mid_stay")
    assert ((mid.month, mid.day), mid.hour) == (mid_stay_day, 10)
    pre = sent_locally(result, "pre_arrival")
    assert (pre.date(), pre.hour) == ((arrival - timedelta(days=3)).astimezone(ZURICH).date(), 10)
    assert result.completed and j.journey_emails() == ["pre_arrival", "mid_stay", "review_request"]


async def test_a_date_only_arrival_is_a_local_date_of_the_property(skipping_env, tmp_path):
    # West of UTC, a date read as UTC midnight would be the evening before, locally.
    new_york = ZoneInfo("America/New_York")
    zones = '{"PROP-ZRH-01": "America/New_York"}'
    with integrations() as fakes:
        async with journey(
            skipping_env, tmp_path, fakes, None, PROPERTY_TIMEZONES=zones
        ) as reactor:
            now = await skipping_env.get_current_time()
            day = (now + timedelta(days=7)).astimezone(new_york).date()
            j = Journey(skipping_env, reactor, fakes, datetime.combine(day, time(), new_york))
            created = j.created(now)
            created["context"]["arrival"] = day.isoformat()
            created["context"]["departure"] = (day + timedelta(days=2)).isoformat()
            await j.post(created)
            state = await j.state()
            pre_arrival_at = datetime.combine(day - timedelta(days=3), time(10), new_york)
            await j.skip_to(pre_arrival_at + timedelta(minutes=1))
            sent = await j.until(lambda s: s.messages["pre_arrival"].status == "sent", "sent")
            await j.settle()

    assert state.arrival == datetime.combine(day, time(), new_york)
    assert state.messages["pre_arrival"].due == pre_arrival_at
    assert near(sent.messages["pre_arrival"].sent_at, pre_arrival_at)
    assert j.journey_emails() == ["pre_arrival"]


# ----- sends that fail: retried by the journey until the message's deadline

OUTAGE = Reply(500, {"errors": [{"message": "outage"}]})


async def pre_arrival_in_an_outage(env, reactor, fakes) -> tuple[Journey, datetime]:
    """A journey whose pre-arrival email is being sent while SendGrid answers 500."""
    arrival = await next_week(env)
    j = Journey(env, reactor, fakes, arrival)
    await j.post(j.created(await j.now()))
    fakes.sendgrid.default = OUTAGE
    due = local(arrival - timedelta(days=3), 10)
    await j.skip_to(due + timedelta(minutes=1))
    await j.until(lambda s: s.messages["pre_arrival"].attempts == 1, "being sent")
    return j, due


async def test_a_send_failing_through_an_outage_is_tried_again_and_goes_out(skipping_env, tmp_path):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None, JOURNEY_QUIET_HOURS="") as reactor:
            j, due = await pre_arrival_in_an_outage(skipping_env, reactor, fakes)
            await j.skip_to(due + timedelta(minutes=32))  # the activity's 30 minutes
            waiting = await j.until(
                lambda s: s.messages["pre_arrival"].retry_at is not None, "a retry scheduled"
            )
            fakes.sendgrid.default = Reply(202, None, {"X-Message-Id": "fake-message-id"})
            retry_at = waiting.messages["pre_arrival"].retry_at
            await j.skip_to(retry_at + timedelta(minutes=1))
            sent = await j.until(lambda s: s.messages["pre_arrival"].status == "sent", "sent")
            await record_history("journey_send_tried_again", j.handle)  # open
            await j.settle()

    message = waiting.messages["pre_arrival"]
    assert message.status == "scheduled" and "try 1 failed" in message.detail
    # An hour after the activity gave up (within its 30 minutes of retries).
    assert due + timedelta(hours=1) < retry_at
    assert retry_at <= due + timedelta(minutes=32) + timedelta(hours=1)
    assert sent.messages["pre_arrival"].attempts == 2
    assert j.journey_emails() == ["pre_arrival"]


async def test_a_cancellation_stops_a_pre_arrival_email_being_retried(skipping_env, tmp_path):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None, JOURNEY_QUIET_HOURS="") as reactor:
            j, due = await pre_arrival_in_an_outage(skipping_env, reactor, fakes)
            # Applied while the send is still being retried, which it stops.
            await j.post(j.event("RESERVATION_CANCELLED", await j.now()))
            dropped = await j.state()
            fakes.sendgrid.default = Reply(202, None, {"X-Message-Id": "fake-message-id"})
            result = await j.finished()
            await record_history("journey_send_dropped_while_retried", j.handle)

    pre_arrival = dropped.messages["pre_arrival"]
    assert pre_arrival.status == "dropped"
    assert "no longer wanted (cancelled)" in pre_arrival.detail
    assert result.messages["cancellation"].status == "sent"
    assert j.journey_emails() == ["cancellation"]


async def test_a_message_failing_until_its_deadline_alerts_operations(skipping_env, tmp_path):
    with integrations() as fakes:
        async with journey(
            skipping_env,
            tmp_path,
            fakes,
            None,
            JOURNEY_QUIET_HOURS="",
            SLACK_WEBHOOK_URL=f"{fakes.slack_ops.url}/services/ops",
        ) as reactor:
            now = await skipping_env.get_current_time()
            arrival = now + timedelta(hours=2)  # the pre-arrival email is due at once
            j = Journey(skipping_env, reactor, fakes, arrival)
            fakes.sendgrid.default = OUTAGE
            await j.post(j.created(now))
            await j.until(lambda s: s.messages["pre_arrival"].attempts == 1, "first try")
            await j.skip_to(now + timedelta(minutes=32))
            waiting = await j.until(
                lambda s: s.messages["pre_arrival"].retry_at is not None, "a retry scheduled"
            )
            await j.skip_to(waiting.messages["pre_arrival"].retry_at + timedelta(minutes=32))
            failed = await j.until(lambda s: s.messages["pre_arrival"].status == "failed", "failed")
            await record_history("journey_send_failed_with_alert", j.handle)  # open
            await j.settle()

    message = failed.messages["pre_arrival"]
    assert message.attempts == 2 and "gave up after 2 tries" in message.detail
    # (The booking confirmation, a reaction of its own, fails and alerts as well.)
    [alert] = [
        r.json()["text"] for r in fakes.slack_ops.succeeded() if "journey-" in r.json()["text"]
    ]
    assert alert.startswith(f":rotating_light: journey-{j.reservation}: the pre_arrival email")
    assert "failed for good" in alert
    assert fakes.sendgrid.succeeded() == []


# ----- a running journey picks up changed settings at its next continue-as-new


async def test_a_running_journey_takes_changed_policy_at_continue_as_new(skipping_env, tmp_path):
    with integrations() as fakes:
        async with journey(
            skipping_env,
            tmp_path,
            fakes,
            None,
            JOURNEY_MAX_HISTORY_EVENTS="100",
            worker_options={"max_cached_workflows": 0},
        ) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            now = await j.now()
            await j.post(j.created(now))
            before = await j.state()
            await j.settle()
        # Deployed again with the pre-arrival hour changed from 10:00 to 11:00.
        changed = reactor.settings.model_copy(update={"journey_pre_arrival_hour": 11})
        async with worker_for(skipping_env.client, changed):
            for i in range(60):
                await j.handle.signal(
                    "reservation_event",
                    LikeMagicEvent.model_validate(
                        j.event("RESERVATION_UPDATED", now + timedelta(seconds=i), note=str(i))
                    ),
                )
            after = await j.until(
                lambda s: s.runs >= 2 and len(s.events_applied) == 61, "a continued run"
            )
            await record_history("journey_policy_refreshed", j.handle)  # open

    assert before.messages["pre_arrival"].due == local(arrival - timedelta(days=3), 10)
    assert after.messages["pre_arrival"].due == local(arrival - timedelta(days=3), 11)
    assert before.schema_version == after.schema_version == SCHEMA_VERSION


# ----- a profile change reaches the running journey


async def test_a_language_change_before_pre_arrival_sends_it_in_that_language(
    skipping_env, tmp_path
):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            await j.post(j.created(await j.now()))
            await j.post(j.event("RESERVATION_UPDATED", await j.now(), userProfileId="902211"))
            described = await j.handle.describe()
            changed = unique(sample("profile_language_updated"), timestamp=iso(await j.now()))
            # What the profile-refresh reaction signals to the journeys it finds (through
            # visibility, which this server lacks: tests/test_profile_refresh.py).
            await j.handle.signal("profile_event", LikeMagicEvent.model_validate(changed))
            refreshed = await j.until(lambda s: changed["id"] in s.events_applied, "applied")
            pre_arrival_at = local(arrival - timedelta(days=3), 10)
            await j.skip_to(pre_arrival_at + timedelta(minutes=1))
            state = await j.until(lambda s: s.messages["pre_arrival"].status == "sent", "sent")
            await record_history("journey_profile_refreshed", j.handle)  # open
            await j.settle()

    assert described.typed_search_attributes.get(PROFILE_ID) == "902211"
    assert (refreshed.profile_id, refreshed.guest_language) == ("902211", "de")
    assert state.messages["pre_arrival"].detail == "journey_pre_arrival email in de"
    [mail] = [r.json() for r in fakes.sendgrid.succeeded() if "bald" in r.json()["subject"]]
    assert mail["personalizations"][0]["to"][0]["email"] == "ana.silva@example.com"
    assert mail["subject"].startswith("Ihr Aufenthalt bei PROP-ZRH-01 beginnt bald")


async def test_older_events_do_not_undo_a_profile_change(skipping_env, tmp_path):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None) as reactor:
            j = Journey(skipping_env, reactor, fakes, await next_week(skipping_env))
            now = await j.now()
            await j.post(j.event("RESERVATION_UPDATED", now, userProfileId="902211"))

            async def change(at: datetime, **context: str) -> None:
                event = unique(sample("profile_updated"), timestamp=iso(at), context=context)
                await j.handle.signal("profile_event", LikeMagicEvent.model_validate(event))
                await j.until(lambda s: event["id"] in s.events_applied, "profile change")

            await change(now, email="ana.new@example.com", language="it")
            # Retried late, older than the change: they only fill what it did not name.
            await change(now - timedelta(hours=1), language="fr", phone="+41790000000")
            await j.post(j.created(now - timedelta(hours=2)))
            state = await j.state()
            await j.settle()

    assert state.guest_email == "ana.new@example.com"  # not the reservation's address
    assert state.guest_language == "it"
    assert state.guest_phone == "+41790000000"  # the older change's, which nothing else named
    assert state.guest_name == "Ana Silva"  # from RESERVATION_CREATED: no change named it


def test_a_state_carried_from_before_schema_versions_is_upgraded():
    carried = JourneyState(reservation_id="RES-1").model_dump(mode="json")
    del carried["schema_version"]
    for message in carried["messages"].values():
        del message["attempts"], message["retry_at"]
    state = restore(carried)
    assert state.schema_version == SCHEMA_VERSION
    assert state.messages["pre_arrival"].attempts == 0
    with pytest.raises(RuntimeError, match="newer than this worker"):
        restore({**carried, "schema_version": SCHEMA_VERSION + 1})
