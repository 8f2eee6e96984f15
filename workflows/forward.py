"""Signed forwarding: one execution per event and forward target."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import INTEGRATION_CALL, result_of
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.forward import ForwardActivities, ForwardRequest
    from activities.targets import target_of


@workflow.defn(name="Forward")
class Forward:
    """Forwards the event to one FORWARD_TARGETS target, signed per Standard Webhooks.

    The router starts one per matching target, as ``<event id>/forward-<name>``; the
    target is read from that ID, so the input is the event, as for every reaction
    (and ``reactor replay`` starts it again the same way). The call follows the
    integration failure policy; every attempt carries the event id as ``webhook-id``.
    A target that keeps failing is told to operations once per outage (by the
    activity), not once per event. Nothing to compensate.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        request = ForwardRequest(target=target_of(workflow.info().workflow_id), event=event)
        delivery = await workflow.execute_activity_method(
            ForwardActivities.forward_to_target, request, **INTEGRATION_CALL
        )
        return result_of(delivery)
