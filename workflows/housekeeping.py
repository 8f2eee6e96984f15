"""Housekeeping assignment: choose, assign, notify, wait with an SLA, escalate,
reassign, and undo what was done when a step fails or the task is cancelled."""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from core.events import LikeMagicEvent, Topic
from workflows.common import INTEGRATION_CALL, in_zone, instant, nested, text, wall_clock

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from activities.pms import PmsActivities, TaskAssignee
    from activities.policy import Delivery
    from activities.roster import Roster, RosterActivities, Staff
    from activities.slack import SlackActivities, SlackMessage, mrkdwn
    from activities.teams import TeamsNotice, notice_facts
    from activities.temporal import (
        HousekeepingInput,
        HousekeepingPolicy,
        TemporalActivities,
        linked_reservation,
    )
    from core.temporal import HOUSEKEEPER, RESERVATION_ID

CANCELLED_STATUSES = frozenset({"CANCELLED", "CANCELED"})
# workflow.patched id: before it, a task created when nobody was on shift was assigned
# at once to anyone on the roster.
WAIT_FOR_SHIFT_PATCH = "wait-for-next-shift"
# workflow.patched ids of the completed saga. Before them: the PMS undo was registered
# only once the PUT had answered; an undo that failed was recorded but reported to
# nobody on cancellation; a cancellation through Temporal undid nothing.
UNDO_BEFORE_CALL_PATCH = "pms-undo-before-call"
REPORT_UNDO_FAILURES_PATCH = "report-failed-undos"
COMPENSATE_ON_CANCEL_PATCH = "compensate-on-workflow-cancel"
# workflow.patched id: before it, only the event that started the assignment could set
# its ReservationId search attribute.
RESERVATION_FROM_ANY_EVENT_PATCH = "reservation-id-from-any-event"


class Step(BaseModel):
    at: datetime
    step: str
    detail: str = ""


class AssignmentState(BaseModel):
    """What the `state` query returns, and the workflow's result."""

    task_id: str
    status: Literal[
        "waiting_for_task",
        "waiting_for_shift",
        "assigning",
        "assigned",
        "completed",
        "cancelled",
        "failed",
        "closed",
    ] = "waiting_for_task"
    task_type: str | None = None
    title: str | None = None
    unit: str | None = None
    property_id: str | None = None
    # The reservation the task links to, from any event that names it.
    reservation_id: str | None = None
    assignee: Staff | None = None
    previous_assignees: list[str] = []
    deadline: datetime | None = None
    # While nobody on the roster is on shift: what the assignment waits for, and until when.
    waiting_for: str | None = None
    waiting_until: datetime | None = None
    escalations: int = 0
    reassignments: int = 0
    completed_by: str | None = None
    took_minutes: int | None = None
    events_applied: list[str] = []
    # Undos that failed for good: what may still be assigned in the outside world.
    undo_failures: list[str] = []
    history: list[Step] = []


# ----- choosing a housekeeper: pure functions of the roster, the counts and the time


def floor_of(unit: str | None) -> int | None:
    """Room 412 / unit U-412 is on floor 4."""
    digits = re.findall(r"\d+", unit or "")
    if not digits or len(digits[-1]) < 3:
        return None
    return int(digits[-1]) // 100


def covers(staff: Staff, unit: str | None) -> bool:
    if unit and any(fnmatch.fnmatchcase(unit, pattern) for pattern in staff.units):
        return True
    floor = floor_of(unit)
    return floor is not None and floor in staff.floors


def shift_times(staff: Staff) -> tuple[time, time] | None:
    if not staff.shift:
        return None
    start_text, end_text = staff.shift.split("-")
    end = time.max if end_text == "24:00" else time.fromisoformat(end_text)
    return time.fromisoformat(start_text), end


def on_shift(staff: Staff, now: time) -> bool:
    times = shift_times(staff)
    if times is None:
        return True
    start, end = times
    if start <= end:
        return start <= now < end
    return now >= start or now < end  # a night shift across midnight


def next_shift(
    roster: Roster, unit: str | None, exclude: set[str], now: datetime
) -> tuple[Staff, datetime] | None:
    """When nobody available is on shift at ``now``: the housekeeper whose shift begins
    first (among those who cover the unit, if any does) and the instant it begins, in
    the roster's time zone. None when someone is on shift (or has no set hours)."""
    candidates = [s for s in roster.staff if s.id not in exclude]
    local = in_zone(now, roster.timezone)
    if not candidates or any(on_shift(s, local.time()) for s in candidates):
        return None
    pool = [s for s in candidates if covers(s, unit)] or candidates
    starts: list[tuple[datetime, int, Staff]] = []
    for index, staff in enumerate(pool):
        times = shift_times(staff)
        assert times is not None  # a staff member without set hours is always on shift
        for days in (0, 1):
            begins = wall_clock(local.date() + timedelta(days=days), times[0], roster.timezone)
            if begins > now:
                starts.append((begins, index, staff))
                break
    if not starts:
        return None
    begins, _, staff = min(starts, key=lambda item: (item[0], item[1]))
    return staff, begins


def choose(
    roster: Roster, counts: dict[str, int], unit: str | None, exclude: set[str], now: time
) -> Staff | None:
    """Staff on shift (everyone, if nobody is), preferring those who cover the unit,
    then those with the fewest open assignments, then roster order."""
    candidates = [s for s in roster.staff if s.id not in exclude]
    pool = [s for s in candidates if on_shift(s, now)] or candidates
    if not pool:
        return None
    order = {s.id: i for i, s in enumerate(roster.staff)}
    return min(pool, key=lambda s: (not covers(s, unit), counts.get(s.id, 0), order[s.id]))


@dataclass
class Undo:
    """A step that changed the outside world, and how to take it back."""

    description: str
    kind: Literal["pms", "notify", "assignee"]
    staff: Staff


class StepFailed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


def _cause(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(err)


@workflow.defn
class HousekeepingAssignment:
    """One cleaning or service task, from TASK_CREATED to done (ID ``housekeeping-<task>``).

    1. Chooses a housekeeper from the roster (zone, then fewest open assignments,
       counted from Temporal's visibility through the Housekeeper search attribute).
    2. Assigns: Housekeeper search attribute and memo; the PMS write-back when
       PMS_API_URL is set.
    3. Notifies the housekeeper (Slack mention, else email).
    4. Waits for TASK_COMPLETED with the task type's SLA: the first breach
       escalates to the supervisor channel, the second reassigns to the next best
       housekeeper (undoing the first assignment, notifying both), up to the
       policy's limit; past it the workflow fails with an operations alert.
    5. On completion records who finished and how long it took.
    6. On cancellation (TASK_UPDATED with a cancelled status, or the reservation's
       RESERVATION_CANCELLED) undoes the assignment and tells the housekeeper.

    Compensation: every step that changes the outside world registers its undo
    before it runs (the PMS undo clears the task only while the PMS still names
    our assignee); when a later step fails for good, the undos run in reverse
    order (each retried; a failing undo is recorded, reported to operations, and
    the others still run), operations are alerted, and the workflow fails saying
    what was done and undone. A cancellation through Temporal runs the undos too,
    then ends the workflow as cancelled.
    Events arrive as the ``task_event`` signal, each applied once (by event id).
    """

    def __init__(self) -> None:
        self._state = AssignmentState(task_id="")
        self._created: LikeMagicEvent | None = None
        self._completed: LikeMagicEvent | None = None
        self._cancel_reason: str | None = None
        self._undos: list[Undo] = []
        self._reported_failures = 0
        self._policy = HousekeepingPolicy()

    # ----- events in

    @workflow.signal
    def task_event(self, event: LikeMagicEvent) -> None:
        if event.id in self._state.events_applied:
            return  # a redelivery changes nothing
        self._state.events_applied.append(event.id)
        self._link_reservation(event)
        status = text(event.context.get("status"))
        if event.topic == Topic.TASK_CREATED and self._created is None:
            self._created = event
        elif event.topic == Topic.TASK_COMPLETED and self._completed is None:
            self._completed = event
        elif event.topic == Topic.TASK_UPDATED and status and status.upper() in CANCELLED_STATUSES:
            self._cancel_reason = self._cancel_reason or "the task was cancelled"
        elif event.topic == Topic.RESERVATION_CANCELLED:
            self._cancel_reason = self._cancel_reason or "the reservation was cancelled"
        self._record("event", f"{event.topic} {event.id}")

    @workflow.query
    def state(self) -> AssignmentState:
        return self._state

    def _link_reservation(self, event: LikeMagicEvent) -> None:
        """Carry ReservationId from whichever event names the reservation (a
        TASK_UPDATED may when the TASK_CREATED did not), so that the reservation's
        cancellation finds this assignment."""
        reservation = (
            linked_reservation(event) if event.topic != Topic.RESERVATION_CANCELLED else None
        )
        if reservation is None:
            return
        carried = workflow.info().typed_search_attributes.get(RESERVATION_ID)
        self._state.reservation_id = self._state.reservation_id or carried or reservation
        if carried is None and workflow.patched(RESERVATION_FROM_ANY_EVENT_PATCH):
            workflow.upsert_search_attributes([RESERVATION_ID.value_set(reservation)])

    # ----- the process

    @workflow.run
    async def run(self, input: HousekeepingInput) -> AssignmentState:
        state = self._state
        state.task_id = input.task_id
        policy = self._policy = input.policy
        try:
            await workflow.wait_condition(
                lambda: (
                    self._created is not None
                    or self._completed is not None
                    or self._cancel_reason is not None
                ),
                timeout=timedelta(hours=policy.wait_for_created_hours),
                timeout_summary="wait for TASK_CREATED",
            )
        except TimeoutError:
            return self._finish("closed", "no TASK_CREATED arrived; nothing was assigned")
        if self._cancel_reason:
            return self._finish("cancelled", f"{self._cancel_reason} before assignment")
        if self._completed is not None:
            self._note_completion()
            return self._finish("completed", "completed before it was assigned")
        assert self._created is not None
        self._read_task(self._created)
        sla = timedelta(minutes=policy.sla_for(state.task_type))

        try:
            await self._assign(sla)
            breaches = 0
            while True:
                if await self._wait_for_outcome(sla):
                    break
                breaches += 1
                if breaches == 1:
                    await self._escalate(sla)
                    continue
                if state.reassignments >= policy.max_reassignments:
                    raise StepFailed(
                        "reassign",
                        f"the SLA was missed twice and the limit of "
                        f"{policy.max_reassignments} reassignment(s) is reached",
                    )
                await self._reassign(sla)
                breaches = 0
        except StepFailed as failure:
            undone = await self._compensate("the assignment failed")
            message = (
                f"housekeeping for task {state.task_id} failed at {failure.step}: "
                f"{failure.message}. Done: {self._done_summary()}. "
                f"Undone: {', '.join(undone) or 'nothing'}."
            )
            if state.undo_failures:
                message += f" Not undone: {'; '.join(state.undo_failures)}."
            self._record("failed", message)
            state.status = "failed"
            await self._alert_operations(message)
            raise ApplicationError(message, type="HousekeepingFailed", non_retryable=True) from None
        except (asyncio.CancelledError, ActivityError) as err:
            # The workflow itself was cancelled through Temporal. The cancellation is
            # delivered once: activities started after catching it run to the end.
            if not is_cancelled_exception(err) or not workflow.patched(COMPENSATE_ON_CANCEL_PATCH):
                raise
            reason = "the assignment was cancelled in Temporal"
            await self._compensate(reason)
            await self._report_undo_failures(reason)
            state.status, state.deadline = "cancelled", None
            self._record("cancelled", reason)
            raise

        if self._cancel_reason:
            await self._compensate(self._cancel_reason)
            if workflow.patched(REPORT_UNDO_FAILURES_PATCH):
                await self._report_undo_failures(self._cancel_reason)
            return self._finish("cancelled", self._cancel_reason)
        self._note_completion()
        return self._finish("completed", f"completed by {state.completed_by or 'someone'}")

    async def _wait_for_outcome(self, sla: timedelta) -> bool:
        """True once completed or cancelled; False when the SLA runs out first."""
        self._state.deadline = workflow.now() + sla
        try:
            await workflow.wait_condition(
                lambda: self._completed is not None or self._cancel_reason is not None,
                timeout=sla,
                timeout_summary="SLA",
            )
        except TimeoutError:
            self._record("sla missed", f"deadline {self._state.deadline.isoformat()}")
            return False
        return True

    # ----- steps

    async def _assign(self, sla: timedelta) -> None:
        state = self._state
        state.status = "assigning"
        exclude = set(state.previous_assignees)
        roster: Roster | None = None
        if workflow.patched(WAIT_FOR_SHIFT_PATCH):
            roster = await self._roster_on_duty(exclude)
            if self._completed is not None or self._cancel_reason is not None:
                return  # settled while it waited for a shift: nobody to bother
        staff = await self._choose(exclude, roster)
        if staff is None:
            raise StepFailed("choose", "nobody on the roster is available")
        state.assignee = staff
        workflow.upsert_search_attributes([HOUSEKEEPER.value_set(staff.id)])
        workflow.upsert_memo({"assignee": staff.id, "assigneeName": staff.name})
        self._undos.append(Undo(f"assignee {staff.id}", "assignee", staff))
        self._record("assigned", f"{staff.id} ({staff.name})")

        # Registered before the call: a PUT that reached the PMS but whose answer was
        # lost must be undone too (the undo only clears what this staff member holds).
        early = workflow.patched(UNDO_BEFORE_CALL_PATCH)
        pms_undo = Undo(f"PMS assignment to {staff.id}", "pms", staff)
        if early:
            self._undos.append(pms_undo)
        pms = await self._call(
            "PMS write-back",
            PmsActivities.pms_assign_task,
            TaskAssignee(task_id=state.task_id, staff_id=staff.id, staff_name=staff.name),
        )
        if early and pms.status != "sent":
            self._undos.remove(pms_undo)  # no PMS configured: nothing to take back
        elif not early and pms.status == "sent":
            self._undos.append(pms_undo)

        note = await self._notify(staff, "assigned", due=workflow.now() + sla)
        if note.status == "sent":
            self._undos.append(Undo(f"notification of {staff.id}", "notify", staff))
        state.status = "assigned"

    async def _roster_on_duty(self, exclude: set[str]) -> Roster:
        """The roster to choose from. When nobody is on shift: an urgent task type goes
        to whoever is on call at once (or, with nobody on call, the supervisors are
        told); any other task waits (a durable timer) until the next shift that covers
        it begins, or until it is completed or cancelled meanwhile."""
        state = self._state
        roster: Roster = await self._call("roster", RosterActivities.housekeeping_roster)
        upcoming = next_shift(roster, state.unit, exclude, workflow.now())
        if upcoming is None:
            return roster
        staff, begins = upcoming
        urgent = state.task_type in self._policy.urgent_types
        if urgent:
            on_call = [
                s.model_copy(update={"shift": None})
                for s in roster.staff
                if s.on_call and s.id not in exclude
            ]
            if on_call:
                self._record("urgent", "nobody on shift: assigned to who is on call")
                return Roster(timezone=roster.timezone, staff=on_call)
            await self._tell_supervisors(
                lambda escape: (
                    f"Urgent: {escape(self._task_name())} came in while nobody is on shift "
                    f"or on call; reactor assigns it when the next shift begins at "
                    f"{in_zone(begins, roster.timezone).strftime('%H:%M')} ({roster.timezone})"
                ),
                "urgent escalated",
                "urgent escalation failed",
            )
        state.status = "waiting_for_shift"
        state.waiting_for = f"the {staff.shift} shift of {staff.id} ({roster.timezone})"
        state.waiting_until = begins
        state.deadline = None
        self._record("waiting for shift", f"{state.waiting_for}, until {begins.isoformat()}")
        try:
            await workflow.wait_condition(
                lambda: self._completed is not None or self._cancel_reason is not None,
                timeout=begins - workflow.now(),
                timeout_summary="next shift",
            )
        except TimeoutError:
            pass
        state.status, state.waiting_for, state.waiting_until = "assigning", None, None
        if self._completed is not None or self._cancel_reason is not None:
            return roster
        # Read again: the roster may have been edited overnight.
        fresh: Roster = await self._call("roster", RosterActivities.housekeeping_roster)
        return fresh

    async def _choose(self, exclude: set[str], roster: Roster | None = None) -> Staff | None:
        if roster is None:
            roster = await self._call("roster", RosterActivities.housekeeping_roster)
        ids = [s.id for s in roster.staff if s.id not in exclude]
        counts: dict[str, int] = await self._call(
            "open assignments", TemporalActivities.count_open_assignments, ids
        )
        local = in_zone(workflow.now(), roster.timezone).time()
        return choose(roster, counts, self._state.unit, exclude, local)

    async def _escalate(self, sla: timedelta) -> None:
        state = self._state
        state.escalations += 1
        who = state.assignee.name if state.assignee else "nobody"
        minutes = int(sla.total_seconds() // 60)
        await self._tell_supervisors(
            lambda escape: (
                f"SLA missed: {escape(self._task_name())} is not done after {minutes} min "
                f"(assigned to {escape(who)}); reactor reassigns it if it is still open after "
                f"another {minutes} min"
            ),
            "escalated",
            "escalation failed",
        )

    async def _tell_supervisors(
        self, says: Callable[[Callable[[str], str]], str], step: str, failed_step: str
    ) -> None:
        """``says(escape)`` is the message with ``escape`` applied to the parts from
        events: escaped for Slack, plain for Teams (whose card reads no Markdown)."""
        card = TeamsNotice(
            title=says(str),
            facts=notice_facts([("Unit", self._state.unit), ("Task", self._state.task_id)]),
            workflow_id=workflow.info().workflow_id,
        )
        try:
            delivery = await workflow.execute_activity_method(
                SlackActivities.post_slack,
                SlackMessage(channel="supervisor", text=says(mrkdwn), card=card),
                **INTEGRATION_CALL,
            )
            self._record(step, delivery.detail)
        except ActivityError as err:
            # A failed escalation must not undo the assignment: note it and keep waiting.
            self._record(failed_step, _cause(err))

    async def _reassign(self, sla: timedelta) -> None:
        state = self._state
        previous = state.assignee
        await self._compensate("reassigned after a second missed SLA")
        if workflow.patched(REPORT_UNDO_FAILURES_PATCH):
            await self._report_undo_failures("reassigned after a second missed SLA")
        if previous is not None:
            state.previous_assignees.append(previous.id)
        state.reassignments += 1
        self._record("reassigning", f"away from {previous.id if previous else 'nobody'}")
        await self._assign(sla)

    async def _compensate(self, reason: str) -> list[str]:
        """Run the registered undos in reverse order; return what was undone. A failed
        undo is recorded (``undo_failures``) and the others still run."""
        undone: list[str] = []
        while self._undos:
            undo = self._undos.pop()
            try:
                if undo.kind == "assignee":
                    workflow.upsert_search_attributes([HOUSEKEEPER.value_unset()])
                    workflow.upsert_memo({"assignee": None, "assigneeName": None})
                    self._state.assignee = None
                elif undo.kind == "pms":
                    result: Delivery = await workflow.execute_activity_method(
                        PmsActivities.pms_unassign_task,
                        TaskAssignee(task_id=self._state.task_id, staff_id=undo.staff.id),
                        **INTEGRATION_CALL,
                    )
                    if result.status == "skipped":
                        # Someone else holds it (a supervisor's reassignment), or the PUT
                        # never arrived: nothing of ours to take back.
                        self._record("nothing to undo", f"{undo.description}: {result.detail}")
                        continue
                else:
                    await self._send_notice(undo.staff, "unassigned", reason=reason)
            except ActivityError as err:
                self._record("undo failed", f"{undo.description}: {_cause(err)}")
                self._state.undo_failures.append(f"{undo.description}: {_cause(err)}")
                continue
            undone.append(undo.description)
            self._record("undone", undo.description)
        return undone

    async def _report_undo_failures(self, reason: str) -> None:
        """Tell operations what could not be undone (once per failed undo)."""
        failures = self._state.undo_failures[self._reported_failures :]
        if not failures:
            return
        self._reported_failures = len(self._state.undo_failures)
        await self._alert_operations(
            f"housekeeping for task {self._state.task_id} ({reason}): could not undo "
            f"{'; '.join(failures)}. Please check the PMS and tell the housekeeper."
        )

    async def _notify(self, staff: Staff, action: str, due: datetime) -> Delivery:
        try:
            return await self._send_notice(staff, action, due=due)
        except ActivityError as err:
            if is_cancelled_exception(err) and workflow.patched(COMPENSATE_ON_CANCEL_PATCH):
                raise
            raise StepFailed("notify", _cause(err)) from None

    async def _send_notice(
        self, staff: Staff, action: str, due: datetime | None = None, reason: str = ""
    ) -> Delivery:
        state = self._state
        name = mrkdwn(self._task_name())  # for Slack: the title comes from the event
        if staff.slack:
            if action == "assigned":
                line = f"<@{staff.slack}> new task for you: {name}"
                if due:
                    line += f", please finish by {due.strftime('%H:%M')} UTC"
            else:
                line = f"<@{staff.slack}> {name} is no longer yours ({reason}); no need to do it"
            task = self._task_name()
            if action == "assigned":
                title = f"New task for {staff.name}: {task}"
            else:
                title = f"{task} is no longer for {staff.name} ({reason}); no need to do it"
            card = TeamsNotice(
                title=title,
                facts=notice_facts(
                    [
                        ("Finish by", f"{due.strftime('%H:%M')} UTC" if due else None),
                        ("Unit", state.unit),
                        ("Task", state.task_id),
                    ]
                ),
                workflow_id=workflow.info().workflow_id,
            )
            delivery: Delivery = await workflow.execute_activity_method(
                SlackActivities.post_slack,
                SlackMessage(channel="operations", text=line, card=card),
                **INTEGRATION_CALL,
            )
            if delivery.status == "sent" or not staff.email:
                return delivery
        if not staff.email:
            return Delivery.skipped(f"{staff.id} has neither a Slack ID nor an email")
        key = f"{workflow.info().workflow_id}/{action}/{staff.id}/{len(state.history)}"
        return await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(
                key=key,
                kind="housekeeping",
                to=staff.email,
                data={
                    "action": action,
                    "staff_name": staff.name,
                    "task_id": state.task_id,
                    "title": state.title,
                    "task_type": state.task_type,
                    "unit": state.unit,
                    "property_id": state.property_id,
                    "due": f"{due.strftime('%H:%M')} UTC" if due else None,
                    "reason": reason or None,
                },
            ),
            **INTEGRATION_CALL,
        )

    async def _alert_operations(self, message: str) -> None:
        try:
            await workflow.execute_activity_method(
                SlackActivities.post_slack,
                SlackMessage(
                    channel="operations",
                    text=f":rotating_light: {mrkdwn(message)}",
                    card=TeamsNotice(title=message, workflow_id=workflow.info().workflow_id),
                ),
                **INTEGRATION_CALL,
            )
        except ActivityError as err:
            self._record("alert failed", _cause(err))

    async def _call(self, step: str, activity: Any, *args: Any) -> Any:
        """An activity call whose permanent failure fails the step (and compensates)."""
        try:
            return await workflow.execute_activity_method(
                activity, args=list(args), **INTEGRATION_CALL
            )
        except ActivityError as err:
            if is_cancelled_exception(err) and workflow.patched(COMPENSATE_ON_CANCEL_PATCH):
                raise  # the workflow is being cancelled: run() compensates
            raise StepFailed(step, _cause(err)) from None

    # ----- bookkeeping

    def _read_task(self, created: LikeMagicEvent) -> None:
        ctx = created.context
        units = nested(ctx, "links", "pmsUnitIds")
        first_unit = units[0] if isinstance(units, list) and units else None
        self._state.task_type = text(ctx.get("type"))
        self._state.title = text(ctx.get("title"))
        self._state.unit = text(ctx.get("unitId")) or text(first_unit)
        self._state.property_id = created.pms_property_id

    def _note_completion(self) -> None:
        done = self._completed
        if done is None:
            return
        self._state.completed_by = text(done.actor_id)
        finished = instant(done.timestamp) or workflow.now()
        started = instant(self._created.timestamp) if self._created else None
        if started is not None and finished >= started:
            self._state.took_minutes = int((finished - started).total_seconds() // 60)
        workflow.upsert_memo(
            {"completedBy": self._state.completed_by, "tookMinutes": self._state.took_minutes}
        )

    def _task_name(self) -> str:
        s = self._state
        name = s.title or s.task_type or s.task_id
        return f"{name} ({s.unit})" if s.unit else name

    def _done_summary(self) -> str:
        steps = [h.detail for h in self._state.history if h.step == "assigned"]
        return ", ".join(f"assigned {s}" for s in steps) or "nothing"

    def _record(self, step: str, detail: str = "") -> None:
        self._state.history.append(Step(at=workflow.now(), step=step, detail=detail))

    def _finish(
        self, status: Literal["completed", "cancelled", "closed"], detail: str
    ) -> AssignmentState:
        self._state.status = status
        self._state.deadline = None
        self._record(status, detail)
        return self._state
