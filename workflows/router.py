"""The router: one execution per event, with the event id as its workflow ID."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
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
    from activities.config import INTEGRATION_VARIABLES, ConfigActivities, ReactorConfig
    from activities.policy import (
        ALERT_SCHEDULE_TO_CLOSE,
        INTEGRATION_RETRY_POLICY,
        INTEGRATION_START_TO_CLOSE,
    )
    from activities.slack import FailureAlert, SlackActivities


def root_cause_message(err: BaseException) -> str:
    """The message of the error our code raised ("SendGrid rejected ..."), not of the
    wrappers around it ("Child Workflow execution failed", "Activity task failed")."""
    while (
        isinstance(err, FailureError)
        and not isinstance(err, ApplicationError)
        and err.cause is not None
    ):
        err = err.cause
    return err.message if isinstance(err, FailureError) else str(err)


def reaction_workflow_id(event_id: str, reaction_name: str) -> str:
    return f"{event_id}/{reaction_name}"


def skip_reason(reaction: Reaction, config: ReactorConfig) -> str | None:
    """Why a reaction does not start for this worker's configuration, if it does not."""
    if reaction.name in config.disabled_reactions:
        return "switched off by REACTOR_DISABLED_REACTIONS"
    if reaction.requires and not any(config.integrations.get(i) for i in reaction.requires):
        needs = " or ".join(INTEGRATION_VARIABLES.get(i, i) for i in reaction.requires)
        return f"not configured: set {needs}"
    return None


@workflow.defn(name="EventRouter")
class EventRouter:
    """Runs every reaction registered for the event's topic as a child workflow.

    First it asks the worker's configuration (a local activity, recorded in the
    history) which reactions are switched off or lack their integration: those
    are listed as skipped with the reason. The others run concurrently as
    children with IDs ``<event id>/<reaction name>``, carrying the event's search
    attributes; one failing does not stop the others. When one fails for good,
    the operations Slack channel is alerted (retried for up to 5 minutes; an
    alert that fails is noted in the outcome and hides nothing). The result lists
    each reaction with its outcome; a topic without reactions completes with an
    empty list.
    """

    @workflow.run
    async def run(self, event: LikeMagicEvent) -> RouterResult:
        candidates = registry.reactions_for(event.topic)
        outcomes: list[ReactionOutcome] = []
        if candidates:
            config = await workflow.execute_local_activity_method(
                ConfigActivities.reactor_config, start_to_close_timeout=timedelta(seconds=10)
            )
            runs = []
            for reaction in candidates:
                if reaction.applies is not None and not reaction.applies(config, event.topic):
                    continue
                reason = skip_reason(reaction, config)
                if reason is None:
                    runs.append(self._react(event, reaction))
                else:
                    runs.append(self._skipped(reaction, reason))
            outcomes = list(await asyncio.gather(*runs))
        return RouterResult(event_id=event.id, topic=event.topic, reactions=outcomes)

    async def _skipped(self, reaction: Reaction, reason: str) -> ReactionOutcome:
        return ReactionOutcome(reaction=reaction.name, status="skipped", detail=reason)

    async def _react(self, event: LikeMagicEvent, reaction: Reaction) -> ReactionOutcome:
        child_id = reaction_workflow_id(event.id, reaction.name)
        try:
            result: ReactionResult = await workflow.execute_child_workflow(
                reaction.workflow.run,  # type: ignore[attr-defined]
                event,
                id=child_id,
                search_attributes=workflow.info().typed_search_attributes,
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            if isinstance(err, ChildWorkflowError):
                detail = root_cause_message(err)
            else:
                detail = "a reaction execution with this ID already exists"
            workflow.logger.warning("reaction %s failed", reaction.name)
            alert = await self._alert(event, reaction.name, child_id, detail)
            return ReactionOutcome(
                reaction=reaction.name,
                workflow_id=child_id,
                status="failed",
                detail=detail,
                alert=alert,
            )
        return ReactionOutcome(
            reaction=reaction.name,
            workflow_id=child_id,
            status=result.status,
            detail=result.detail,
        )

    async def _alert(self, event: LikeMagicEvent, reaction: str, child_id: str, error: str) -> str:
        try:
            delivery = await workflow.execute_activity_method(
                SlackActivities.alert_reaction_failed,
                FailureAlert(
                    event_id=event.id,
                    topic=event.topic,
                    reaction=reaction,
                    workflow_id=child_id,
                    error=error,
                ),
                start_to_close_timeout=INTEGRATION_START_TO_CLOSE,
                schedule_to_close_timeout=ALERT_SCHEDULE_TO_CLOSE,
                retry_policy=INTEGRATION_RETRY_POLICY,
            )
        except ActivityError as err:
            return f"failed: {root_cause_message(err)}"
        return "sent" if delivery.status == "sent" else f"skipped: {delivery.detail}"
