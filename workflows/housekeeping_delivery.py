"""Delivers task and cancellation events to the housekeeping assignment workflows."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent, Topic
from workflows.common import INTEGRATION_CALL, result_of
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.temporal import TemporalActivities


def housekeeping_delivery(topic: str) -> str | None:
    """The activity that hands a TASK_* event to its assignment, which the router runs
    itself while it succeeds (see ``EventRouter``). A cancellation is not: its lookup of
    the reservation's assignments pauses and repeats, so it keeps its own workflow."""
    return None if topic == Topic.RESERVATION_CANCELLED else "deliver_task_event"


@workflow.defn
class HousekeepingDelivery:
    """Routes an event to the long-running ``HousekeepingAssignment`` of its task.

    TASK_CREATED / TASK_UPDATED / TASK_COMPLETED go to ``housekeeping-<task id>``
    by signal-with-start (a workflow cannot signal-with-start itself, so an
    activity does it): whichever event arrives first starts the assignment.
    RESERVATION_CANCELLED goes to every open assignment of that reservation.
    Task types outside HOUSEKEEPING_TASK_TYPES end as skipped.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        if event.topic == Topic.RESERVATION_CANCELLED:
            delivery = await workflow.execute_activity_method(
                TemporalActivities.cancel_reservation_assignments, event, **INTEGRATION_CALL
            )
        else:
            delivery = await workflow.execute_activity_method(
                TemporalActivities.deliver_task_event, event, **INTEGRATION_CALL
            )
        return result_of(delivery)
