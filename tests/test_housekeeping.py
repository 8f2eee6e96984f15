"""Housekeeping assignment on the time-skipping test server: SLA timers fire when the
test skips time. Events go through the real webhook, router and delivery activity."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from activities.roster import Roster, Staff
from core.events import LikeMagicEvent
from core.temporal import HOUSEKEEPER
from tests.clock import next_local, pin
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
from workflows.housekeeping import (
    AssignmentState,
    choose,
    covers,
    floor_of,
    next_shift,
    on_shift,
)

SLA = timedelta(minutes=45)  # DEPARTURE_CLEANING

ROSTER = """
timezone: Europe/Zurich
staff:
  - {id: hk-ana, name: Ana, email: ana@hotel.example, floors: [4], shift: "SHIFT"}
  - {id: hk-bo, name: Bo, slack: U0BO, email: bo@hotel.example, floors: [4], shift: "SHIFT"}
  - {id: hk-cy, name: Cy, email: cy@hotel.example, floors: [1], shift: "SHIFT"}
"""


@activity.defn(name="count_open_assignments")
async def no_open_assignments(staff_ids: list[str]) -> dict[str, int]:
    # The time-skipping server has no visibility queries; the real activity is
    # tested against the dev server below.
    return dict.fromkeys(staff_ids, 0)


def task_events() -> tuple[dict, dict, dict]:
    created = unique(sample("task_created"))
    completed = unique(sample("task_completed"), objectId=created["objectId"])
    cancelled = unique(
        sample("task_completed"),
        objectId=created["objectId"],
        topic="TASK_UPDATED",
        context={"status": "CANCELLED"},
    )
    return created, completed, cancelled


class Stay:
    """A reactor on the time-skipping server with every integration faked."""

    def __init__(self, env, reactor, fakes, created):
        self.env, self.reactor, self.fakes = env, reactor, fakes

        self.handle = reactor.client.get_workflow_handle(
            f"housekeeping-{created['objectId']}", result_type=AssignmentState
        )
        self.posted: list[str] = []

    async def post(self, event: dict) -> None:
        answer = await self.reactor.post(event)
        assert answer.status_code == 200, answer.text
        self.posted.append(event["id"])

    async def created(self, event: dict, clock) -> None:
        """Post the TASK_CREATED; at night, see the assignment wait for the shift and
        skip to the moment it begins (tests/clock.py)."""
        await self.post(event)
        if clock.night:
            state = await self.until(lambda s: s.status == "waiting_for_shift", "waiting")
            assert state.assignee is None and state.waiting_until is not None
            assert state.waiting_for and "shift of hk-ana" in state.waiting_for
            await skip_until(self.env, state.waiting_until + timedelta(seconds=1))

    async def assigned(self, event: dict, clock) -> AssignmentState:
        """Post the TASK_CREATED (through the night, in the night case) and wait until
        the task is assigned."""
        await self.created(event, clock)
        return await self.until(lambda s: s.status == "assigned", "assigned")

    async def settle(self) -> None:
        """Let every router finish while this worker lives, so that the test sees every
        effect of the events it posted."""
        with self.env.auto_time_skipping_disabled():
            for event_id in self.posted:
                await self.reactor.routed(event_id)

    async def state(self) -> AssignmentState:
        return await self.handle.query("state", result_type=AssignmentState)

    async def until(self, check, what: str) -> AssignmentState:
        return await query_until(self.handle, AssignmentState, check, what)

    async def skip(self, duration: timedelta) -> None:
        await skip_until(self.env, await self.env.get_current_time() + duration)

    def emails_to(self, address: str) -> list[dict]:
        return [
            r.json()
            for r in self.fakes.sendgrid.succeeded()
            if r.json()["personalizations"][0]["to"][0]["email"] == address
        ]

    def slack_lines(self, fake) -> list[str]:
        return [r.json()["text"] for r in fake.succeeded()]

    def pms(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.fakes.crm.requests if "/tasks/" in r.path]


async def start(skipping_env, tmp_path, fakes, clock, worker_options=None, **overrides):
    roster = tmp_path / "roster.yaml"
    now = await skipping_env.get_current_time()
    roster.write_text(ROSTER.replace("SHIFT", clock.shift(now, "Europe/Zurich")))
    settings = {
        **fakes.settings(),
        "HOUSEKEEPING_ROSTER": str(roster),
        "SLACK_SUPERVISOR_WEBHOOK_URL": f"{fakes.slack_support.url}/services/supervisor",
        # The PMS fake shares the CRM fake's server; paths tell them apart.
        "PMS_API_URL": f"{fakes.crm.url}/pms",
        **overrides,
    }
    return running_reactor(
        skipping_env.client,
        tmp_path,
        stand_ins=[no_open_assignments],
        worker_options=worker_options,
        **settings,
    )


# ----- the whole flow


async def test_happy_path_assigns_notifies_and_records_completion(skipping_env, tmp_path, clock):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            state = await stay.assigned(created, clock)
            assert state.assignee and state.assignee.id == "hk-ana"  # floor 4, first
            assert state.deadline is not None
            described = await stay.handle.describe()
            assert described.typed_search_attributes.get(HOUSEKEEPER) == "hk-ana"
            await stay.skip(timedelta(minutes=30))
            await stay.post(completed)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await record_history(f"housekeeping_happy_path{'_night' * clock.night}", stay.handle)
            await stay.settle()

    assert result.status == "completed"
    assert result.completed_by == "hk-ines"
    assert result.took_minutes == 43  # from the events' own timestamps
    assert result.escalations == 0 and result.reassignments == 0
    assert stay.pms() == [("PUT", f"/pms/tasks/{created['objectId']}/assignee")]
    [notice] = stay.emails_to("ana@hotel.example")
    assert notice["subject"] == "New task for you: Departure cleaning room 412 (U-412)"
    assert stay.slack_lines(fakes.slack_support) == []  # no escalation


async def test_first_breach_escalates_and_keeps_waiting(skipping_env, tmp_path, clock):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            await stay.skip(SLA + timedelta(minutes=1))
            state = await stay.until(lambda s: s.escalations == 1, "escalated")
            await record_history("housekeeping_escalated_waiting", stay.handle)  # open
            assert state.assignee and state.assignee.id == "hk-ana"
            assert state.reassignments == 0
            await stay.post(completed)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await stay.settle()
    [escalation] = stay.slack_lines(fakes.slack_support)
    assert escalation.startswith("SLA missed: Departure cleaning room 412 (U-412)")
    assert "assigned to Ana" in escalation
    assert result.status == "completed"


async def test_second_breach_reassigns_undoing_the_first(skipping_env, tmp_path, clock):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            await stay.skip(SLA + timedelta(minutes=1))
            await stay.until(lambda s: s.escalations == 1, "escalated")
            await stay.skip(SLA)
            state = await stay.until(
                lambda s: s.reassignments == 1 and s.status == "assigned", "reassigned"
            )
            described = await stay.handle.describe()
            await stay.post(completed)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            if not clock.night:
                await record_history("housekeeping_reassigned", stay.handle)
            await stay.settle()

    assert state.assignee and state.assignee.id == "hk-bo"
    assert state.previous_assignees == ["hk-ana"]
    assert described.typed_search_attributes.get(HOUSEKEEPER) == "hk-bo"
    path = f"/pms/tasks/{created['objectId']}/assignee"
    # The undo reads who holds the task in the PMS before it clears it.
    assert stay.pms() == [("PUT", path), ("GET", path), ("DELETE", path), ("PUT", path)]
    # Both told: Ana that it is no longer hers, Bo (by Slack mention) that it is his.
    assert [m["subject"] for m in stay.emails_to("ana@hotel.example")] == [
        "New task for you: Departure cleaning room 412 (U-412)",
        "No longer yours: Departure cleaning room 412 (U-412)",
    ]
    [mention] = [line for line in stay.slack_lines(fakes.slack_ops) if line.startswith("<@")]
    assert mention.startswith("<@U0BO> new task for you: Departure cleaning room 412")
    assert result.status == "completed" and result.reassignments == 1


async def test_reassignment_limit_fails_with_alert_and_nothing_assigned(
    skipping_env, tmp_path, clock
):
    created, _, _ = task_events()
    with integrations() as fakes:
        async with await start(
            skipping_env, tmp_path, fakes, clock, HOUSEKEEPING_MAX_REASSIGNMENTS=1
        ) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            for expected in (1, 1, 2):  # escalate, reassign, escalate again
                await stay.skip(SLA + timedelta(minutes=1))
                await stay.until(
                    lambda s, e=expected: s.escalations == e, f"escalations {expected}"
                )
            await stay.skip(SLA + timedelta(minutes=1))
            with skipping_env.auto_time_skipping_disabled():
                with pytest.raises(WorkflowFailureError) as failed:
                    await stay.handle.result()
            described = await stay.handle.describe()
            await stay.settle()

    message = failed.value.cause.message
    assert "limit of 1 reassignment(s) is reached" in message
    assert "Undone:" in message and "PMS assignment to hk-bo" in message
    assert described.status == WorkflowExecutionStatus.FAILED
    assert described.typed_search_attributes.get(HOUSEKEEPER) is None
    assert stay.pms()[-1][0] == "DELETE"
    alerts = [line for line in stay.slack_lines(fakes.slack_ops) if "rotating_light" in line]
    assert len(alerts) == 1 and created["objectId"] in alerts[0]


async def test_pms_rejecting_the_write_back_leaves_nothing_assigned(skipping_env, tmp_path, clock):
    created, _, _ = task_events()
    with integrations() as fakes:
        fakes.crm.fail_next(Reply(409, {"message": "task is locked"}))
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.created(created, clock)
            await stay.until(lambda s: s.status == "failed", "failed")
            with skipping_env.auto_time_skipping_disabled():
                with pytest.raises(WorkflowFailureError) as failed:
                    await stay.handle.result()
            described = await stay.handle.describe()
            await stay.settle()
            state = await stay.state()

    message = failed.value.cause.message
    assert "failed at PMS write-back: PMS rejected the assignment: 409 task is locked" in message
    assert "Undone: assignee hk-ana." in message  # the refused PUT changed nothing
    assert state.assignee is None
    assert described.typed_search_attributes.get(HOUSEKEEPER) is None
    assert stay.emails_to("ana@hotel.example") == []  # never told
    assert any("rotating_light" in line for line in stay.slack_lines(fakes.slack_ops))


async def test_notification_failing_for_good_undoes_the_assignment(skipping_env, tmp_path, clock):
    created, _, _ = task_events()
    with integrations() as fakes:
        fakes.sendgrid.fail_next(Reply(400, {"errors": [{"message": "invalid to address"}]}))
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.created(created, clock)
            await stay.until(lambda s: s.status == "failed", "failed")
            with skipping_env.auto_time_skipping_disabled():
                with pytest.raises(WorkflowFailureError) as failed:
                    await stay.handle.result()
            described = await stay.handle.describe()
            await stay.settle()

    message = failed.value.cause.message
    assert "failed at notify: SendGrid rejected the email: 400 invalid to address" in message
    path = f"/pms/tasks/{created['objectId']}/assignee"
    assert stay.pms() == [("PUT", path), ("GET", path), ("DELETE", path)]
    assert described.typed_search_attributes.get(HOUSEKEEPER) is None


async def test_cancelled_mid_wait_undoes_and_tells_the_housekeeper(skipping_env, tmp_path, clock):
    created, _, cancelled = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            await stay.skip(timedelta(minutes=20))
            await stay.post(cancelled)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await record_history("housekeeping_cancelled_mid_wait", stay.handle)
            await stay.settle()

    assert result.status == "cancelled"
    assert result.assignee is None
    path = f"/pms/tasks/{created['objectId']}/assignee"
    assert stay.pms() == [("PUT", path), ("GET", path), ("DELETE", path)]
    assert fakes.pms_tasks.assignees == {}
    subjects = [m["subject"] for m in stay.emails_to("ana@hotel.example")]
    assert subjects[-1] == "No longer yours: Departure cleaning room 412 (U-412)"


async def test_a_supervisors_reassignment_in_the_pms_is_not_undone(skipping_env, tmp_path, clock):
    created, _, cancelled = task_events()
    task = created["objectId"]
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            fakes.pms_tasks.assignees[task] = "hk-supervisor-pick"  # changed by hand
            await stay.post(cancelled)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await record_history("housekeeping_cancel_kept_a_manual_reassignment", stay.handle)
            await stay.settle()

    path = f"/pms/tasks/{task}/assignee"
    assert stay.pms() == [("PUT", path), ("GET", path)]  # no DELETE
    assert fakes.pms_tasks.assignees[task] == "hk-supervisor-pick"
    [kept] = [h for h in result.history if h.step == "nothing to undo"]
    assert "no longer assigned to hk-ana" in kept.detail
    assert result.status == "cancelled" and result.undo_failures == []


async def test_an_assignment_whose_pms_answer_was_lost_is_undone(skipping_env, tmp_path, clock):
    created, _, _ = task_events()
    task = created["objectId"]
    with integrations() as fakes:
        fakes.pms_tasks.lose_assignment_answers = True
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.created(created, clock)
            await stay.until(lambda s: s.status == "assigning", "assigning")
            # The PMS took the PUT every time; the retries give up after 30 minutes.
            await stay.skip(timedelta(minutes=31))
            await stay.until(lambda s: s.status == "failed", "failed")
            with skipping_env.auto_time_skipping_disabled():
                with pytest.raises(WorkflowFailureError) as failed:
                    await stay.handle.result()
            await record_history("housekeeping_lost_pms_answer_undone", stay.handle)
            await stay.settle()

    message = failed.value.cause.message
    assert "failed at PMS write-back: PMS error 500" in message
    assert "Undone: PMS assignment to hk-ana, assignee hk-ana." in message
    assert stay.pms()[-2:] == [
        ("GET", f"/pms/tasks/{task}/assignee"),
        ("DELETE", f"/pms/tasks/{task}/assignee"),
    ]
    assert task not in fakes.pms_tasks.assignees


async def test_a_failed_undo_on_cancellation_is_recorded_and_alerted(skipping_env, tmp_path, clock):
    created, _, cancelled = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            # The PMS still names Ana, then refuses to clear the task.
            fakes.crm.fail_next(
                Reply(200, {"staffId": "hk-ana"}), Reply(403, {"message": "task is locked"})
            )
            await stay.post(cancelled)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await record_history("housekeeping_failed_undo_reported", stay.handle)
            await stay.settle()

    assert result.status == "cancelled"
    assert result.undo_failures == [
        "PMS assignment to hk-ana: PMS rejected the unassignment: 403 task is locked"
    ]
    [alert] = [line for line in stay.slack_lines(fakes.slack_ops) if "rotating_light" in line]
    assert f"housekeeping for task {created['objectId']}" in alert
    assert "could not undo PMS assignment to hk-ana" in alert
    # The other undos still ran: Ana was told.
    subjects = [m["subject"] for m in stay.emails_to("ana@hotel.example")]
    assert subjects[-1] == "No longer yours: Departure cleaning room 412 (U-412)"


async def test_cancelled_through_temporal_undoes_the_assignment(skipping_env, tmp_path, clock):
    created, _, _ = task_events()
    task = created["objectId"]
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            await stay.handle.cancel()
            with skipping_env.auto_time_skipping_disabled():
                with pytest.raises(WorkflowFailureError) as failed:
                    await stay.handle.result()
            described = await stay.handle.describe()
            state = await stay.state()
            await record_history("housekeeping_cancelled_through_temporal", stay.handle)
            await stay.settle()

    assert isinstance(failed.value.cause, CancelledError)
    assert described.status == WorkflowExecutionStatus.CANCELED
    assert described.typed_search_attributes.get(HOUSEKEEPER) is None
    path = f"/pms/tasks/{task}/assignee"
    assert stay.pms() == [("PUT", path), ("GET", path), ("DELETE", path)]
    assert task not in fakes.pms_tasks.assignees
    assert state.status == "cancelled" and state.assignee is None
    subjects = [m["subject"] for m in stay.emails_to("ana@hotel.example")]
    assert subjects[-1] == "No longer yours: Departure cleaning room 412 (U-412)"


async def test_completed_arriving_before_created_is_not_lost(skipping_env, tmp_path, clock):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.post(completed)
            await stay.until(lambda s: completed["id"] in s.events_applied, "completion held")
            await stay.post(created)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await stay.settle()

    assert result.status == "completed"
    assert result.completed_by == "hk-ines"
    assert result.assignee is None
    assert stay.pms() == []
    assert fakes.sendgrid.requests == []  # nobody was sent to a finished task


async def test_the_same_event_twice_changes_nothing(skipping_env, tmp_path, clock):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.created(created, clock)
            again = await reactor.post(created)  # the publisher's redelivery
            assert again.json()["status"] == "duplicate"
            await stay.until(lambda s: s.status == "assigned", "assigned")
            # A retried delivery activity signals the same event again.
            await stay.handle.signal("task_event", LikeMagicEvent.model_validate(created))
            await stay.post(completed)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await stay.settle()

    assert result.events_applied == [created["id"], completed["id"]]
    assert len(stay.pms()) == 1
    assert len(stay.emails_to("ana@hotel.example")) == 1


async def test_a_new_worker_picks_up_the_wait_and_the_timer_still_fires(
    skipping_env, tmp_path, clock
):
    created, completed, _ = task_events()
    with integrations() as fakes:
        # Not sticky: the test server does not hand a dead worker's sticky queue back
        # to the normal queue while it skips time (a real server does, after 5 s).
        async with await start(
            skipping_env, tmp_path, fakes, clock, worker_options={"max_cached_workflows": 0}
        ) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.assigned(created, clock)
            await stay.settle()
        # The first worker is gone; a new one (a restarted process) takes over.
        async with worker_for(skipping_env.client, reactor.settings, [no_open_assignments]):
            await stay.skip(SLA + timedelta(minutes=1))
            state = await stay.until(lambda s: s.escalations == 1, "escalated by the new worker")
            await stay.handle.signal("task_event", LikeMagicEvent.model_validate(completed))
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
    assert state.assignee and state.assignee.id == "hk-ana"
    assert result.status == "completed" and result.escalations == 1


# ----- choosing, as pure functions


def staff(id: str, **kw) -> Staff:
    return Staff(id=id, name=id, **kw)


def test_floor_and_zone_matching():
    assert floor_of("U-412") == 4 and floor_of("1203") == 12 and floor_of("U-7") is None
    assert covers(staff("a", floors=[4]), "U-412")
    assert covers(staff("b", units=["U-4*"]), "U-412")
    assert not covers(staff("c", floors=[1]), "U-412")


def test_shifts_including_night_shifts():
    assert on_shift(staff("a", shift="07:00-15:00"), time(9))
    assert not on_shift(staff("a", shift="07:00-15:00"), time(15))
    assert on_shift(staff("n", shift="22:00-06:00"), time(2))
    assert not on_shift(staff("n", shift="22:00-06:00"), time(12))


def test_choice_prefers_zone_then_fewest_open_then_roster_order():
    roster = Roster(
        staff=[
            staff("far", floors=[1]),
            staff("busy", floors=[4]),
            staff("free", floors=[4]),
            staff("off", floors=[4], shift="22:00-23:00"),
        ]
    )
    counts = {"far": 0, "busy": 3, "free": 1, "off": 0}
    assert choose(roster, counts, "U-412", set(), time(9)).id == "free"
    assert choose(roster, counts, "U-412", {"free", "busy"}, time(9)).id == "far"
    assert choose(roster, counts, "U-412", {"far", "busy", "free", "off"}, time(9)) is None
    # Nobody on shift: everyone is a candidate rather than nobody.
    night = Roster(staff=[staff("a", shift="07:00-08:00"), staff("b", shift="09:00-10:00")])
    assert choose(night, {}, None, set(), time(23)).id == "a"


# ----- at night: the assignment waits for the shift, urgent tasks do not


NIGHT_ROSTER = """
timezone: Europe/Zurich
staff:
  - {id: hk-ana, name: Ana, email: ana@hotel.example, floors: [4], shift: "07:00-15:00"}
  - {id: hk-bo, name: Bo, email: bo@hotel.example, floors: [4], shift: "06:00-14:00"}
  - {id: hk-cy, name: Cy, email: cy@hotel.example, floors: [1], shift: "05:00-13:00"}
  - {id: hk-dan, name: Dan, email: dan@hotel.example, floors: [4], shift: "14:00-22:00",
     on_call: true}
"""


async def night_stay(skipping_env, tmp_path, fakes, roster=NIGHT_ROSTER, **overrides):
    (tmp_path / "roster.yaml").write_text(roster)
    settings = {
        **fakes.settings(),
        "HOUSEKEEPING_ROSTER": str(tmp_path / "roster.yaml"),
        "SLACK_SUPERVISOR_WEBHOOK_URL": f"{fakes.slack_support.url}/services/supervisor",
        **overrides,
    }
    return running_reactor(
        skipping_env.client, tmp_path, stand_ins=[no_open_assignments], **settings
    )


async def test_a_task_created_at_night_is_assigned_when_the_morning_shift_starts(
    skipping_env, tmp_path
):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await night_stay(skipping_env, tmp_path, fakes) as reactor:
            at = await pin(skipping_env, 23, 45, "Europe/Zurich")
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.post(created)
            waiting = await stay.until(lambda s: s.status == "waiting_for_shift", "waiting")
            # Floor 4: Ana (07:00) and Bo (06:00) cover it; Cy starts earlier, elsewhere.
            morning = next_local(at, 6, 0, "Europe/Zurich")
            assert waiting.waiting_until == morning
            assert waiting.waiting_for == "the 06:00-14:00 shift of hk-bo (Europe/Zurich)"
            assert waiting.assignee is None and waiting.deadline is None
            assert fakes.sendgrid.requests == []  # nobody woken up
            await record_history("housekeeping_waiting_for_shift_open", stay.handle)
            await skip_until(skipping_env, morning - timedelta(minutes=1))
            assert (await stay.state()).status == "waiting_for_shift"
            await skip_until(skipping_env, morning + timedelta(seconds=1))
            assigned = await stay.until(lambda s: s.status == "assigned", "assigned")
            await stay.post(completed)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await record_history("housekeeping_waited_for_shift", stay.handle)
            await stay.settle()

    assert assigned.assignee and assigned.assignee.id == "hk-bo"  # the one on shift
    # The SLA counts from the assignment, not from the night.
    assert assigned.deadline is not None
    assert morning + SLA <= assigned.deadline < morning + SLA + timedelta(minutes=1)
    [notice] = stay.emails_to("bo@hotel.example")
    assert notice["subject"] == "New task for you: Departure cleaning room 412 (U-412)"
    assert result.status == "completed"


async def test_an_urgent_task_at_night_goes_to_who_is_on_call(skipping_env, tmp_path):
    created, _, cancelled = task_events()
    with integrations() as fakes:
        async with await night_stay(
            skipping_env, tmp_path, fakes, HOUSEKEEPING_URGENT_TYPES="DEPARTURE_CLEANING"
        ) as reactor:
            await pin(skipping_env, 23, 45, "Europe/Zurich")
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.post(created)
            state = await stay.until(lambda s: s.status == "assigned", "assigned at once")
            await stay.post(cancelled)
            with skipping_env.auto_time_skipping_disabled():
                await stay.handle.result()
            await stay.settle()

    assert state.assignee and state.assignee.id == "hk-dan"
    assert "urgent" in [h.step for h in state.history]
    assert stay.slack_lines(fakes.slack_support) == []  # supervisors not needed


async def test_an_urgent_task_with_nobody_on_call_tells_the_supervisors(skipping_env, tmp_path):
    created, _, cancelled = task_events()
    with integrations() as fakes:
        async with await night_stay(
            skipping_env,
            tmp_path,
            fakes,
            roster=NIGHT_ROSTER.replace("on_call: true", ""),
            HOUSEKEEPING_URGENT_TYPES="DEPARTURE_CLEANING",
        ) as reactor:
            await pin(skipping_env, 23, 45, "Europe/Zurich")
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.post(created)
            state = await stay.until(lambda s: s.status == "waiting_for_shift", "waiting")
            await stay.post(cancelled)
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()
            await stay.settle()

    [alert] = stay.slack_lines(fakes.slack_support)
    assert alert.startswith("Urgent: Departure cleaning room 412 (U-412) came in while nobody")
    assert "06:00 (Europe/Zurich)" in alert
    assert state.assignee is None
    # Cancelled while it waited: nobody was assigned, so nothing to undo or tell.
    assert (
        result.status == "cancelled"
        and stay.pms() == []
        and stay.emails_to("bo@hotel.example") == []
    )


def test_next_shift_in_the_roster_zone_across_a_clock_change():
    zurich = "Europe/Zurich"
    roster = Roster(
        timezone=zurich,
        staff=[staff("early", floors=[4], shift="07:00-15:00"), staff("far", shift="03:00-04:00")],
    )
    # The night the clocks go forward (2027-03-28): 07:00 is 05:00 UTC, no longer 06:00.
    night = next_local(datetime(2027, 3, 27, 22, 0, tzinfo=UTC), 23, 30, zurich)
    who, begins = next_shift(roster, "U-412", set(), night)
    assert who.id == "early" and begins == datetime(2027, 3, 28, 5, 0, tzinfo=UTC)
    # Someone on shift (or without set hours): no waiting.
    assert next_shift(roster, "U-412", set(), begins) is None
    anytime = Roster(timezone=zurich, staff=[staff("any")])
    assert next_shift(anytime, None, set(), night) is None
    # Nobody covers the unit: the first shift of anyone.
    who, _ = next_shift(roster, "U-912", set(), night)
    assert who.id == "far"
