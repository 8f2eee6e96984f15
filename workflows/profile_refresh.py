"""A guest's profile changed: the running journeys of that guest learn it."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import INTEGRATION_CALL, result_of
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.temporal import TemporalActivities


@workflow.defn
class ProfileRefresh:
    """On PROFILE_UPDATED and PROFILE_LANGUAGE_UPDATED, finds the running
    ``GuestJourney`` executions whose ProfileId search attribute is the event's
    profile (a visibility query, in an activity) and signals the event to each
    (``profile_event``). Each journey takes what the event carries, re-reads the
    LIKE MAGIC profile, and writes its later messages with the refreshed guest.

    Skipped with "no running journey for this profile" when none runs. The activity
    follows the integration failure policy; nothing to compensate: a journey applies
    an event once, so signalling it again changes nothing.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        delivery = await workflow.execute_activity_method(
            TemporalActivities.refresh_journey_guests, event, **INTEGRATION_CALL
        )
        return result_of(delivery)
