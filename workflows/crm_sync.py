"""CRM sync when a guest profile changes."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import INTEGRATION_CALL, result_of
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities, ProfileChanges

# Context keys that identify the profile rather than change it.
NOT_CHANGES = frozenset({"userProfileId", "profileId", "id"})


def changed_fields(context: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in context.items() if k not in NOT_CHANGES}


@workflow.defn
class CrmSync:
    """On PROFILE_UPDATED, sends the changed profile fields (the event's context) to
    the hotel's CRM with an idempotency key derived from the event id.

    Skipped when the event carries no changed fields or CRM_API_URL is not set.
    The call follows the integration failure policy, honouring Retry-After.
    Nothing to compensate: the update is idempotent.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        changes = changed_fields(event.context)
        if not event.object_id:
            return ReactionResult.skipped("the event names no profile (objectId)")
        if not changes:
            return ReactionResult.skipped("the event carries no changed profile fields")
        delivery = await workflow.execute_activity_method(
            CrmActivities.crm_update_profile,
            ProfileChanges(profile_id=event.object_id, changes=changes, event_id=event.id),
            **INTEGRATION_CALL,
        )
        return result_of(delivery)
