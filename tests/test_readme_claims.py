"""README claims about order, timing and skips, each a test named after the claim.

Other claims cite their tests where the README makes them (test_router_deploy,
test_housekeeping, test_housekeeping_visibility, test_stuck_events, ...).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.forward import ForwardActivities, ForwardRequest
from activities.policy import (
    INTEGRATION_RETRY_POLICY,
    INTEGRATION_SCHEDULE_TO_CLOSE,
    raise_for_status,
)
from api.intake import Alerts
from core.events import LikeMagicEvent
from storage.intake import Stats
from tests.clock import pin
from tests.conftest import sample
from tests.fakes import FakeService, Reply
from tests.helpers import (
    by_name,
    make_settings,
    query_until,
    running_reactor,
    skip_until,
    unique,
)
from tests.integrations import integrations
from tests.kit import event, reactor_kit
from tests.test_guest_journey import Journey, journey, next_week
from tests.test_housekeeping import Stay, night_stay, start, task_events
from workflows.housekeeping import AssignmentState


async def test_a_task_completed_that_comes_first_ends_the_assignment_at_once(
    skipping_env, tmp_path, clock
):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            with skipping_env.auto_time_skipping_disabled():
                # The server's clock stands still: a wait for TASK_CREATED never ends.
                before = await skipping_env.get_current_time()
                await stay.post(completed)
                state = await query_until(
                    stay.handle, AssignmentState, lambda s: s.status != "waiting_for_task", "ended"
                )
                result = await stay.handle.result()
                ended = await skipping_env.get_current_time()
                await stay.post(created)
                late = await reactor.routed(created["id"])
            await stay.settle()

    assert state.status == "completed" and result.status == "completed"
    assert ended - before < timedelta(minutes=1)
    assert result.assignee is None and result.completed_by == "hk-ines"
    outcome = by_name(late)["housekeeping"]
    assert outcome.status == "skipped" and "already finished" in outcome.detail
    assert stay.pms() == [] and fakes.sendgrid.requests == []


async def test_an_assignment_without_its_task_created_closes_after_24_hours(
    skipping_env, tmp_path, clock
):
    created, _, _ = task_events()
    updated = unique(created, topic="TASK_UPDATED", context={"status": "IN_PROGRESS"})
    updated["objectId"] = created["objectId"]
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.post(updated)
            waiting = await stay.until(
                lambda s: updated["id"] in s.events_applied, "the update applied"
            )
            await stay.settle()
            started = await skipping_env.get_current_time()
            await skip_until(skipping_env, started + timedelta(hours=23, minutes=50))
            still = await stay.state()
            await skip_until(skipping_env, started + timedelta(hours=24, minutes=1))
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()

    assert waiting.status == "waiting_for_task" and still.status == "waiting_for_task"
    assert result.status == "closed" and result.assignee is None
    assert stay.pms() == [] and fakes.sendgrid.requests == []


@pytest.mark.parametrize("ending", ["completed", "cancelled"])
async def test_nobody_is_assigned_or_woken_for_a_task_ended_while_it_waits_for_the_shift(
    skipping_env, tmp_path, ending
):
    created, completed, cancelled = task_events()
    with integrations() as fakes:
        async with await night_stay(skipping_env, tmp_path, fakes) as reactor:
            await pin(skipping_env, 23, 45, "Europe/Zurich")
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.post(created)
            waiting = await stay.until(lambda s: s.status == "waiting_for_shift", "waiting")
            await stay.post(completed if ending == "completed" else cancelled)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await stay.settle()

    assert waiting.waiting_until is not None
    assert result.status == ending and result.assignee is None
    assert stay.pms() == [] and fakes.sendgrid.requests == []
    # No housekeeper mentioned in the operations channel either (the team notice of a
    # TASK_COMPLETED is no one's wake-up call).
    assert not [r for r in fakes.slack_ops.requests if "<@" in r.json()["text"]]


async def test_a_journey_that_hears_nothing_after_the_departure_ends_14_days_later(
    skipping_env, tmp_path
):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            await j.post(j.created(await j.now()))
            await j.post(j.event("RESERVATION_CHECKED_IN", arrival), at=arrival)
            # No checkout ever comes.
            await j.settle()
            await j.skip_to(j.departure + timedelta(days=13, hours=23))
            before = await j.state()
            await j.skip_to(j.departure + timedelta(days=14, minutes=1))
            result = await j.finished()

    assert not before.completed and before.stage == "checked_in"
    assert result.completed and result.stage == "checked_in"


async def test_a_support_alert_whose_guest_no_source_knows_still_goes_out_as_from_a_guest(
    skipping_env, tmp_path
):
    # The platform's thin message: who wrote is not in it, and no journey or profile knows.
    sent = event(
        "MESSAGE_RECEIVED",
        context={"reservationId": "RES-UNSEEN-1", "text": "Is breakfast still on?"},
    )
    async with reactor_kit(skipping_env, tmp_path) as kit:
        outcome = await kit.react(sent, "support-alert")
    assert outcome.status == "done"
    assert "no guest name: tried the event" in outcome.detail
    assert kit.slack("support") == ["A guest (RES-UNSEEN-1) wrote: Is breakfast still on?"]


@pytest.mark.parametrize(("asked", "waited"), [("30", 30), ("3600", 600)])
def test_a_429_is_retried_after_the_delay_it_asks_for_capped_at_10_minutes(asked, waited):
    with pytest.raises(ApplicationError) as raised:
        raise_for_status("SendGrid", 429, b"slow down", {"Retry-After": asked})
    assert not raised.value.non_retryable
    assert raised.value.next_retry_delay == timedelta(seconds=waited)


def test_a_5xx_is_retried_from_1_s_doubling_at_most_2_min_apart_for_30_minutes_in_all():
    policy = INTEGRATION_RETRY_POLICY
    assert policy.initial_interval == timedelta(seconds=1) and policy.backoff_coefficient == 2
    assert policy.maximum_interval == timedelta(minutes=2)
    assert INTEGRATION_SCHEDULE_TO_CLOSE == timedelta(minutes=30)
    with pytest.raises(ApplicationError) as raised:
        raise_for_status("SendGrid", 502, b"bad gateway")
    assert not raised.value.non_retryable and raised.value.next_retry_delay is None


async def test_a_forward_target_removed_since_the_event_was_planned_is_skipped(tmp_path):
    # The router planned `forward-old-crm`; the worker that runs it was deployed with a
    # FORWARD_TARGETS file that no longer has it.
    targets = tmp_path / "targets.yaml"
    secret = "whsec_" + "cmVhY3Rvci1yZWFkbWUtY2xhaW1zLXNlY3JldCEh"
    kept = {"name": "new-crm", "url": "http://127.0.0.1:9/hook", "secret": secret}
    targets.write_text(yaml.safe_dump({"targets": [kept]}))
    activities = ForwardActivities(make_settings(tmp_path, FORWARD_TARGETS=str(targets)))
    planned = ForwardRequest(
        target="old-crm", event=LikeMagicEvent.model_validate(sample("task_created"))
    )
    delivery = await ActivityEnvironment().run(activities.forward_to_target, planned)
    assert delivery.status == "skipped"
    assert delivery.detail == "no forward target old-crm in FORWARD_TARGETS"


async def test_operations_hear_once_when_the_oldest_queued_event_waits_too_long_and_once_when_empty(
    tmp_path,
):
    with FakeService(Reply(200, "ok")) as slack:
        alerts = Alerts(
            make_settings(
                tmp_path,
                SLACK_WEBHOOK_URL=f"{slack.url}/services/ops",
                INTAKE_ALERT_AFTER_SECONDS="300",
            )
        )
        # Ages far from the bound: the test does not race the clock.
        fresh = Stats(depth=2, oldest=datetime.now(UTC) - timedelta(seconds=10))
        old = Stats(depth=3, oldest=datetime.now(UTC) - timedelta(seconds=1000))
        for stats in (fresh, old, old, Stats(depth=1, oldest=old.oldest)):
            await alerts.observe(stats, "Temporal is unreachable")
        told_waiting = [r.json()["text"] for r in slack.requests]
        for _ in range(2):
            await alerts.observe(Stats(depth=0, oldest=None), "")
        told = [r.json()["text"] for r in slack.requests]

    [waiting] = told_waiting
    assert "3 event(s) waiting for Temporal" in waiting and "Temporal is unreachable" in waiting
    assert told[1:] == [":white_check_mark: reactor intake: the queue is empty again."]


async def test_the_webhook_checks_the_secret_then_the_size_then_json_then_id_and_topic(
    temporal_env, tmp_path
):
    big = b'{"id": ' + b" " * 5000  # too large, and not JSON either
    broken = b'{"id": "x", "topic": '  # small, not JSON
    no_id = {"topic": "TASK_CREATED"}  # JSON, no id
    async with running_reactor(
        temporal_env.client, tmp_path, worker=False, WEBHOOK_MAX_BODY_BYTES=4096
    ) as reactor:
        answers = [
            await reactor.post(big, secret="not-the-secret"),
            await reactor.post(big),
            await reactor.post(broken),
            await reactor.post(no_id),
        ]
    assert [a.status_code for a in answers] == [401, 413, 400, 422]
    # None of the refusals is retried: no Retry-After (only a 503 carries one).
    assert [a.headers.get("Retry-After") for a in answers] == [None] * 4


async def test_a_check_in_drops_the_pre_arrival_not_yet_sent_and_a_checkout_the_mid_stay(
    skipping_env, tmp_path
):
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None) as reactor:
            arrival = await next_week(skipping_env)
            j = Journey(skipping_env, reactor, fakes, arrival)
            await j.post(j.created(await j.now()))
            booked = await j.state()
            # An early check-in, days before the pre-arrival email is due.
            await j.post(j.event("RESERVATION_CHECKED_IN", await j.now()))
            checked_in = await j.state()
            # A checkout before the first night is over: the mid-stay email is still pending.
            await j.post(j.event("RESERVATION_CHECKED_OUT", await j.now()))
            checked_out = await j.state()
            await j.skip_to(await j.now() + timedelta(days=2))
            result = await j.finished()

    assert booked.messages["pre_arrival"].status == "scheduled"
    assert checked_in.messages["pre_arrival"].status == "dropped"
    assert checked_in.messages["mid_stay"].status == "scheduled"
    assert checked_out.messages["mid_stay"].status == "dropped"
    assert result.completed
    assert "pre_arrival" not in j.journey_emails() and "mid_stay" not in j.journey_emails()
