"""Activity log: forwards events to an external log endpoint."""

from __future__ import annotations

from temporalio import workflow

from core.events import LikeMagicEvent
from workflows.common import INTEGRATION_CALL, result_of
from workflows.reaction import ReactionResult

with workflow.unsafe.imports_passed_through():
    from activities.forward import ForwardActivities


@workflow.defn
class ActivityLog:
    """Forwards the event, as the platform sent it, to EVENT_LOG_URL.

    Which topics are forwarded is configuration (EVENT_LOG_TOPICS, default all);
    the router does not start this reaction for other topics. The call follows
    the integration failure policy with the event id as idempotency key (and as
    ``webhook-id``: the activity log is sent as the forward targets are).
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> ReactionResult:
        delivery = await workflow.execute_activity_method(
            ForwardActivities.forward_event, event, **INTEGRATION_CALL
        )
        return result_of(delivery)
