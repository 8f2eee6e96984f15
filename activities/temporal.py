"""Temporal itself as a system reactor talks to: reading past events back from its
visibility store (no second store), and delivering events to long-running workflows."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.policy import Delivery, invalid_input
from core.events import LikeMagicEvent, Topic
from core.guest import Guest
from core.logging import activity_fields, fields
from core.settings import Settings
from core.temporal import (
    HOUSEKEEPER,
    OBJECT_ID,
    OBJECT_TYPE,
    PMS_PROPERTY_ID,
    PROFILE_ID,
    RESERVATION_ID,
    context_id,
    received_event,
)

log = logging.getLogger("reactor.temporal")

SAFE_VALUE = re.compile(r"[A-Za-z0-9._:@/ -]+")
HOUSEKEEPING_WORKFLOW = "HousekeepingAssignment"
JOURNEY_WORKFLOW = "GuestJourney"
# The memo a journey is started with, and carries across continue-as-new: the shape of
# journey. Shape 2 takes every workflow.patched branch of workflows/guest_journey.py that
# existed when it was introduced without asking (no marker, no TemporalChangeVersion
# upsert); journeys started without it ask as before. Shape 3 also keeps its guest in
# the memo (``guest``, encrypted like every payload), so that a reaction whose event names
# no guest reads it by describing the journey instead of querying it (a worker task).
JOURNEY_SHAPE_MEMO = "journey_shape"
JOURNEY_GUEST_MEMO = "guest"
JOURNEY_SHAPE = 3


def housekeeping_workflow_id(task_id: str) -> str:
    return f"housekeeping-{task_id}"


def _safe(value: str) -> str:
    if not SAFE_VALUE.fullmatch(value):
        invalid_input("Temporal lookup", f"unsupported characters in {value!r}")
    return value


class FindEvent(BaseModel):
    object_id: str
    topic: str


class AssignmentRecord(BaseModel):
    """What a housekeeping assignment tells others (from its memo)."""

    assignee_id: str | None = None
    assignee_name: str | None = None


class HousekeepingPolicy(BaseModel):
    """Configuration an assignment runs with, fixed when it starts."""

    sla_minutes: dict[str, int] = {}
    default_sla_minutes: int = 45
    max_reassignments: int = 2
    # How long a workflow started by a TASK_COMPLETED/UPDATED waits for its TASK_CREATED.
    wait_for_created_hours: int = 24
    # Task types assigned at once to who is on call when nobody is on shift.
    urgent_types: list[str] = []

    def sla_for(self, task_type: str | None) -> int:
        return self.sla_minutes.get(task_type or "", self.default_sla_minutes)


class HousekeepingInput(BaseModel):
    task_id: str
    policy: HousekeepingPolicy = HousekeepingPolicy()


def linked_reservation(event: LikeMagicEvent) -> str | None:
    links = event.context.get("links")
    if not isinstance(links, dict):
        return None
    for key in ("pmsDepartingReservationId", "pmsArrivingReservationId"):
        if isinstance(links.get(key), str) and links[key]:
            return str(links[key])
    ids = links.get("pmsReservationIds")
    if isinstance(ids, list) and ids and isinstance(ids[0], str):
        return ids[0]
    return None


class JourneyPolicy(BaseModel):
    """Configuration a guest journey runs with: from the settings when it starts, and
    read again from the current settings at each continue-as-new."""

    pre_arrival_days: int = 3
    pre_arrival_hour: int = 10
    mid_stay_hour: int = 10
    review_delay_hours: int = 6
    quiet_hours: str = "21:00-08:00"
    property_timezones: dict[str, str] = {}
    max_history_events: int = 5000
    # PMS_API_URL is set: an update without dates makes the journey ask the PMS.
    pms_configured: bool = False
    # A journey that knows no departure ends this long after its last event.
    idle_days: int = 30

    def timezone_of(self, property_id: str | None) -> str:
        return self.property_timezones.get(property_id or "", "UTC")


class JourneyInput(BaseModel):
    reservation_id: str
    policy: JourneyPolicy = JourneyPolicy()
    # The journey's own state, carried across continue-as-new (None on a fresh start).
    state: dict[str, Any] | None = None


def journey_workflow_id(reservation_id: str) -> str:
    return f"journey-{reservation_id}"


def profile_ids(event: LikeMagicEvent) -> list[str]:
    """The profile a PROFILE_* event is about: its objectId, and its context's
    ``userProfileId`` when that names another id."""
    ids = [event.object_id] if event.object_id else []
    named = context_id(event, "userProfileId")
    if named and named not in ids:
        ids.append(named)
    return ids


class TemporalActivities:
    def __init__(self, settings: Settings, client: Client) -> None:
        self._client = client
        self._settings = settings

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.find_event,
            self.assignment_record,
            self.count_open_assignments,
            self.deliver_task_event,
            self.cancel_reservation_assignments,
            self.deliver_reservation_event,
            self.journey_guest,
            self.journey_policy,
            self.refresh_journey_guests,
        ]

    @activity.defn(name="find_event")
    async def find_event(self, query: FindEvent) -> LikeMagicEvent | None:
        """The newest event of ``topic`` about ``object_id`` that reactor received, if any.

        Read-only; Temporal errors are retried.
        """
        listing = self._client.list_workflows(
            f'WorkflowType = "EventRouter" AND ObjectId = "{_safe(query.object_id)}" '
            f'AND Topic = "{_safe(query.topic)}"',
            limit=1,
        )
        try:
            async for execution in listing:
                return await received_event(self._client, execution.id, execution.run_id)
        except RPCError as err:
            if err.status != RPCStatusCode.UNIMPLEMENTED:
                raise
            # A server without visibility queries: the caller does without the event.
            log.warning("visibility queries unsupported", extra=activity_fields(topic=query.topic))
        return None

    @activity.defn(name="assignment_record")
    async def assignment_record(self, task_id: str) -> AssignmentRecord | None:
        """Who the task's housekeeping assignment went to, from its memo; None when
        the task has no assignment workflow. Read-only; Temporal errors are retried."""
        handle = self._client.get_workflow_handle(housekeeping_workflow_id(task_id))
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        memo = await described.memo()
        return AssignmentRecord(
            assignee_id=memo.get("assignee"), assignee_name=memo.get("assigneeName")
        )

    @activity.defn(name="count_open_assignments")
    async def count_open_assignments(self, staff_ids: list[str]) -> dict[str, int]:
        """How many running housekeeping assignments each staff member holds, counted
        from Temporal's visibility store (the Housekeeper search attribute), on this
        reactor's task queue: another deployment sharing the namespace (another hotel,
        a staging stack) whose roster reuses the same staff ids does not count."""
        counts: dict[str, int] = {}
        queue = _safe(activity.info().task_queue)
        for staff_id in staff_ids:
            result = await self._client.count_workflows(
                f'WorkflowType = "{HOUSEKEEPING_WORKFLOW}" AND ExecutionStatus = "Running" '
                f'AND {HOUSEKEEPER.name} = "{_safe(staff_id)}" AND TaskQueue = "{queue}"'
            )
            counts[staff_id] = result.count
        return counts

    def _policy(self) -> HousekeepingPolicy:
        s = self._settings
        return HousekeepingPolicy(
            sla_minutes=s.housekeeping_sla_minutes,
            default_sla_minutes=s.housekeeping_default_sla_minutes,
            max_reassignments=s.housekeeping_max_reassignments,
            urgent_types=s.housekeeping_urgent_type_list(),
        )

    @activity.defn(name="deliver_task_event")
    async def deliver_task_event(self, event: LikeMagicEvent) -> Delivery:
        """Hand a TASK_* event to the task's ``housekeeping-<task id>`` workflow with
        signal-with-start, so whichever event arrives first starts it. Task types
        outside HOUSEKEEPING_TASK_TYPES are skipped; an assignment that already
        finished is not started again. Safe to run twice: the workflow ignores an
        event it has seen.
        """
        if not event.object_id:
            return Delivery.skipped("the event names no task (objectId)")
        task_type = event.context.get("type")
        types = self._settings.housekeeping_task_type_list()
        # A creation must name a listed type; a later event without a type may belong
        # to a listed task whose creation has not arrived yet.
        if task_type not in types and (event.topic == Topic.TASK_CREATED or task_type):
            return Delivery.skipped(f"task type {task_type} is not in HOUSEKEEPING_TASK_TYPES")
        reservation = linked_reservation(event)
        return await self._signal_with_start(
            HOUSEKEEPING_WORKFLOW,
            HousekeepingInput(task_id=event.object_id, policy=self._policy()),
            workflow_id=housekeeping_workflow_id(event.object_id),
            signal="task_event",
            event=event,
            object_type="TASK",
            reservation_id=reservation,
            summary=f"Housekeeping {event.context.get('title') or event.object_id}",
        )

    async def _signal_with_start(
        self,
        workflow: str,
        start_input: BaseModel,
        *,
        workflow_id: str,
        signal: str,
        event: LikeMagicEvent,
        object_type: str,
        reservation_id: str | None,
        summary: str,
        memo: dict[str, Any] | None = None,
    ) -> Delivery:
        """Signal ``event`` to ``workflow_id``, starting it first if it does not exist.

        REJECT_DUPLICATE: a workflow that already finished is not started again, so a
        late or repeated event cannot begin a second life for its object.
        """
        assert event.object_id
        attributes: list[SearchAttributePair[str]] = [
            SearchAttributePair(OBJECT_TYPE, object_type),
            SearchAttributePair(OBJECT_ID, event.object_id),
        ]
        if reservation_id:
            attributes.append(SearchAttributePair(RESERVATION_ID, reservation_id))
        if event.pms_property_id:
            attributes.append(SearchAttributePair(PMS_PROPERTY_ID, event.pms_property_id))
        try:
            await self._client.start_workflow(
                workflow,
                start_input,
                id=workflow_id,
                task_queue=activity.info().task_queue,
                start_signal=signal,
                start_signal_args=[event],
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(attributes),
                static_summary=summary,
                memo=memo,
            )
        except WorkflowAlreadyStartedError:
            return Delivery.skipped(f"{workflow_id} has already finished")
        log.info("event delivered", extra=fields(event_id=event.id, workflow_id=workflow_id))
        return Delivery.sent("temporal", f"delivered to {workflow_id}", workflow_id)

    def _journey_policy(self) -> JourneyPolicy:
        s = self._settings
        return JourneyPolicy(
            pre_arrival_days=s.journey_pre_arrival_days,
            pre_arrival_hour=s.journey_pre_arrival_hour,
            mid_stay_hour=s.journey_mid_stay_hour,
            review_delay_hours=s.journey_review_delay_hours,
            quiet_hours=s.journey_quiet_hours,
            property_timezones=s.property_timezones,
            max_history_events=s.journey_max_history_events,
            pms_configured=s.pms_api_url is not None,
            idle_days=s.journey_idle_days,
        )

    @activity.defn(name="journey_policy")
    async def journey_policy(self) -> JourneyPolicy:
        """The journey policy from this worker's settings: a running journey takes it
        at its next continue-as-new (a local activity, so the choice is recorded)."""
        return self._journey_policy()

    @activity.defn(name="deliver_reservation_event")
    async def deliver_reservation_event(self, event: LikeMagicEvent) -> Delivery:
        """Hand a RESERVATION_* event to the reservation's ``journey-<id>`` workflow with
        signal-with-start: whichever event of a reservation arrives first starts its
        journey. A journey that already finished is not started again. Safe to run
        twice: the journey applies each event once.
        """
        if not event.object_id:
            return Delivery.skipped("the event names no reservation (objectId)")
        return await self._signal_with_start(
            JOURNEY_WORKFLOW,
            JourneyInput(reservation_id=event.object_id, policy=self._journey_policy()),
            workflow_id=journey_workflow_id(event.object_id),
            signal="reservation_event",
            event=event,
            object_type="RESERVATION",
            reservation_id=event.object_id,
            summary=f"Guest journey {event.object_id}",
            memo={JOURNEY_SHAPE_MEMO: JOURNEY_SHAPE},
        )

    @activity.defn(name="journey_guest")
    async def journey_guest(self, reservation_id: str) -> Guest | None:
        """What the reservation's journey knows of its guest; None when reactor has no
        journey for the reservation. Read-only; Temporal errors are retried.

        A journey of shape 3 keeps its guest in its memo: one describe, no worker task. A
        guest the journey learns from an event it holds but has not applied yet is not
        in it yet; the memo then has what the journey knew before that event (the same
        as when the event had come a moment later). Older journeys, and a journey that
        knows no guest in its memo, are asked with the ``guest`` query, which Temporal
        answers only after the journey has applied the signals it holds.
        """
        handle = self._client.get_workflow_handle(journey_workflow_id(reservation_id))
        try:
            described = await handle.describe()
            guest: Guest | None = await described.memo_value(
                JOURNEY_GUEST_MEMO, None, type_hint=Guest
            )
            if guest is None:
                guest = await handle.query("guest", result_type=Guest)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return guest

    # Visibility is eventually consistent: an assignment started, or linked to the
    # reservation by a later event, moments before the cancellation may not be listed
    # yet. The lookup is repeated after these pauses (seconds), within the activity.
    RELOOK_AFTER: tuple[float, ...] = (2.0, 5.0)
    # A profile change looks once more, after a search index's usual refresh (about
    # 1 s): most profiles have no running journey, and each look holds up the event.
    PROFILE_RELOOK_AFTER: tuple[float, ...] = (1.0,)

    @activity.defn(name="cancel_reservation_assignments")
    async def cancel_reservation_assignments(self, event: LikeMagicEvent) -> Delivery:
        """Signal the cancellation of a reservation to every open housekeeping
        assignment linked to it (found through the ReservationId search attribute).

        The lookup runs again after short pauses (heartbeating meanwhile), so an
        assignment that visibility did not list at first is reached too; each one is
        signalled once per run, and a signal it has seen changes nothing.
        """
        if not event.object_id:
            return Delivery.skipped("the event names no reservation (objectId)")
        query = (
            f'WorkflowType = "{HOUSEKEEPING_WORKFLOW}" AND ExecutionStatus = "Running" '
            f'AND {RESERVATION_ID.name} = "{_safe(event.object_id)}"'
        )
        signalled = await self._signal_listed(query, "task_event", event)
        if signalled is None:
            return Delivery.skipped("this Temporal server has no visibility queries")
        if not signalled:
            return Delivery.skipped("no open housekeeping assignment for this reservation")
        return Delivery.sent("temporal", f"cancelled {', '.join(signalled)}")

    async def _signal_listed(
        self,
        query: str,
        signal: str,
        event: LikeMagicEvent,
        relook_after: tuple[float, ...] | None = None,
    ) -> list[str] | None:
        """Signal ``event`` to every running execution the visibility ``query`` lists,
        looking again after the pauses (RELOOK_AFTER unless given; heartbeating
        meanwhile); each one is signalled once, one that finished meanwhile is left
        out. None: the server has no visibility queries."""
        signalled: list[str] = []
        pauses = self.RELOOK_AFTER if relook_after is None else relook_after
        try:
            for pause in (0.0, *pauses):
                if pause:
                    activity.heartbeat(len(signalled))
                    await asyncio.sleep(pause)
                async for execution in self._client.list_workflows(query):
                    if (
                        execution.status != WorkflowExecutionStatus.RUNNING
                        or execution.id in signalled
                    ):
                        continue
                    handle = self._client.get_workflow_handle(execution.id)
                    try:
                        await handle.signal(signal, event)
                    except RPCError as err:
                        if err.status != RPCStatusCode.NOT_FOUND:  # finished meanwhile: fine
                            raise
                        continue
                    signalled.append(execution.id)
        except RPCError as err:
            if err.status != RPCStatusCode.UNIMPLEMENTED:
                raise
            return None
        return signalled

    @activity.defn(name="refresh_journey_guests")
    async def refresh_journey_guests(self, event: LikeMagicEvent) -> Delivery:
        """Tell every running guest journey of the event's profile (found through the
        ProfileId search attribute, which a journey sets when it learns its profile) to
        refresh its guest: the ``profile_event`` signal carries the PROFILE_* event.

        The profile is the event's objectId, and its context's ``userProfileId`` when
        it names one. The lookup runs again after PROFILE_RELOOK_AFTER; a journey
        applies each event once, so running twice changes nothing.
        """
        profiles = profile_ids(event)
        if not profiles:
            return Delivery.skipped("the event names no profile (objectId)")
        wanted = " OR ".join(f'{PROFILE_ID.name} = "{_safe(p)}"' for p in profiles)
        query = (
            f'WorkflowType = "{JOURNEY_WORKFLOW}" AND ExecutionStatus = "Running" AND ({wanted})'
        )
        signalled = await self._signal_listed(
            query, "profile_event", event, self.PROFILE_RELOOK_AFTER
        )
        if signalled is None:
            return Delivery.skipped("this Temporal server has no visibility queries")
        if not signalled:
            return Delivery.skipped("no running journey for this profile")
        log.info("profile change delivered", extra=fields(event_id=event.id, count=len(signalled)))
        return Delivery.sent("temporal", f"told {', '.join(signalled)} to refresh the guest")
