"""The router: one execution per event, with the event id as its workflow ID."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import (
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)

from core.events import LikeMagicEvent
from workflows.reaction import Reaction, ReactionOutcome, ReactionResult, RouterResult

# The registry is shared with the worker process (not re-imported per run) so
# that reactions registered at runtime, as tests do, are seen by the router.
# It must be `import x.y as y`: the sandbox does not pass through `from x import y`.
with workflow.unsafe.imports_passed_through():
    import workflows.registry as registry


def root_cause_message(err: BaseException) -> str:
    """The innermost failure's message: "SendGrid rejected ...", not "Activity task failed"."""
    while isinstance(err, FailureError) and err.cause is not None:
        err = err.cause
    return err.message if isinstance(err, FailureError) else str(err)


def reaction_workflow_id(event_id: str, reaction_name: str) -> str:
    return f"{event_id}/{reaction_name}"


@workflow.defn(name="EventRouter")
class EventRouter:
    """Runs every reaction registered for the event's topic as a child workflow.

    Children have IDs ``<event id>/<reaction name>`` and carry the event's search
    attributes. They run concurrently; one failing does not stop the others. The
    result lists each reaction with its outcome; a topic without reactions
    completes with an empty list. Retries live in the reactions' activities.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> RouterResult:
        reactions = registry.reactions_for(event.topic)
        outcomes = await asyncio.gather(*(self._react(event, r) for r in reactions))
        return RouterResult(event_id=event.id, topic=event.topic, reactions=list(outcomes))

    async def _react(self, event: LikeMagicEvent, reaction: Reaction) -> ReactionOutcome:
        child_id = reaction_workflow_id(event.id, reaction.name)
        try:
            result: ReactionResult = await workflow.execute_child_workflow(
                reaction.workflow.run,  # type: ignore[attr-defined]
                event,
                id=child_id,
                search_attributes=workflow.info().typed_search_attributes,
            )
        except ChildWorkflowError as err:
            detail = root_cause_message(err)
            workflow.logger.warning("reaction %s failed", reaction.name)
            return ReactionOutcome(
                reaction=reaction.name, workflow_id=child_id, status="failed", detail=detail
            )
        except WorkflowAlreadyStartedError:
            return ReactionOutcome(
                reaction=reaction.name,
                workflow_id=child_id,
                status="failed",
                detail="a reaction execution with this ID already exists",
            )
        return ReactionOutcome(
            reaction=reaction.name,
            workflow_id=child_id,
            status=result.status,
            detail=result.detail,
        )
