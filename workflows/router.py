"""The router: one execution per event, with the event id as its workflow ID."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)

from core.events import LikeMagicEvent
from workflows.common import result_of
from workflows.reaction import (
    ReactionOutcome,
    ReactionResult,
    RoutePlan,
    RouterResult,
)

# The registry is shared with the worker process (not re-imported per run) so
# that reactions registered at runtime, as tests do, are seen by the router.
# It must be `import x.y as y`: the sandbox does not pass through `from x import y`.
with workflow.unsafe.imports_passed_through():
    import workflows.registry as registry
    from activities.config import ConfigActivities
    from activities.policy import (
        ALERT_SCHEDULE_TO_CLOSE,
        INTEGRATION_HEARTBEAT_TIMEOUT,
        INTEGRATION_REJECTED,
        INTEGRATION_RETRY_POLICY,
        INTEGRATION_START_TO_CLOSE,
        Delivery,
    )
    from activities.slack import FailureAlert, SlackActivities
    from core.temporal import TOPIC

ROUTER_WORKFLOW = "EventRouter"
# The failure type of a router whose event the worker cannot decode.
EVENT_UNDECODABLE = "EventUndecodable"


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


# A delivery the router runs itself (an activity, not a local one: see README, "What an
# event costs"): three tries, since the reaction's workflow takes over, with the full
# failure policy, when they fail.
ROUTER_DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=[INTEGRATION_REJECTED],
)
ROUTER_DELIVERY_BUDGET = timedelta(minutes=1)
# The ones that send to a provider without idempotency keys (SendGrid): no budget
# that could cut a try short while its request may still succeed (the workflow taking
# over would send again), and each try outlives its lookups and its request (HTTP
# timeouts of at most 100 s each).
ROUTER_SENDS = frozenset({"send_welcome_email"})
ROUTER_SEND_START_TO_CLOSE = timedelta(minutes=5)

# Routers started before this patch chose their reactions from the live registry
# while replaying; they keep doing so (the registry must not change under them).
RECORDED_PLAN_PATCH = "router-recorded-plan"

# The memo a router is started with: the shape of router its starter asks for (in the
# history's first event, so replays see it). Shape 2 records its plan with no patch
# marker: the memo already tells it from the routers that read the live registry, which
# saves the marker and the ``TemporalChangeVersion`` search attribute the SDK upserts with
# it (2 history events and a visibility write per event). A router started without it
# (every router recorded before it) asks ``patched`` as before.
ROUTER_SHAPE_MEMO = "router_shape"
ROUTER_SHAPE = 2


def router_memo() -> dict[str, Any]:
    """The memo every starter of a router passes (API, intake, replay, benches)."""
    return {ROUTER_SHAPE_MEMO: ROUTER_SHAPE}


def decode_problem(err: BaseException) -> str:
    """Why an event could not be decoded, without the event's values (guest data)."""
    if isinstance(err, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}"
            for e in err.errors(include_url=False, include_input=False, include_context=False)
        ]
        return "; ".join(problems[:5])
    return type(err).__name__


def undecodable_message(err: BaseException) -> str:
    return f"the worker cannot decode the event ({decode_problem(err)})"


@workflow.defn(name=ROUTER_WORKFLOW)
class EventRouter:
    """Runs every reaction registered for the event's topic as a child workflow.

    First it asks for its plan (a local activity, recorded in the history): the
    reactions the live registry has for the topic, by workflow type name, and
    which of them are switched off or lack their integration: those are listed
    as skipped with the reason. A deploy that changes the registry therefore
    never changes what a running router does. The others run concurrently as
    children with IDs ``<event id>/<reaction name>``, carrying the event's search
    attributes; one failing does not stop the others. A reaction whose work fits
    one activity (the plan names it: a delivery to a long-running workflow, the
    welcome email) is run by the router itself as an activity with the ID
    ``<event id>/<reaction name>``; only when that fails does its child run. When
    one fails for good, the operations Slack channel is alerted (retried for up to 5 minutes; an
    alert that fails is noted in the outcome and hides nothing). The result lists
    each reaction with its outcome; a topic without reactions completes with an
    empty list. An event the worker cannot decode fails the router at once (type
    ``EventUndecodable``, the reason without the event's values) after an alert.
    """

    @workflow.run
    async def run(self, received: RawValue) -> RouterResult:
        # Decoded here rather than by the SDK: an event this worker cannot decode fails
        # the router at once, with an alert, instead of failing its first workflow task
        # again and again, unseen. (Commands stay the same for events that decode.)
        try:
            event = workflow.payload_converter().from_payload(received.payload, LikeMagicEvent)
        except Exception as err:  # noqa: BLE001 - whatever the converter raises
            message = undecodable_message(err)
            workflow.logger.warning("router cannot decode its event: %s", decode_problem(err))
            info = workflow.info()
            await self._alert_failure(
                FailureAlert(
                    event_id=info.workflow_id,
                    topic=info.typed_search_attributes.get(TOPIC) or "",
                    reaction="",
                    workflow_id=info.workflow_id,
                    error=message,
                )
            )
            raise ApplicationError(message, type=EVENT_UNDECODABLE, non_retryable=True) from None
        return await self._route(event)

    async def _route(self, event: LikeMagicEvent) -> RouterResult:
        shape = workflow.memo_value(ROUTER_SHAPE_MEMO, 1, type_hint=int)
        if shape >= ROUTER_SHAPE or workflow.patched(RECORDED_PLAN_PATCH):
            plan = await workflow.execute_local_activity_method(
                registry.RoutingActivities.route_plan,
                event.topic,
                start_to_close_timeout=timedelta(seconds=10),
            )
        else:
            plan = await self._plan_from_live_registry(event.topic)
        runs = [
            self._skipped(p.reaction, p.skipped)
            if p.skipped is not None
            else self._deliver(event, p.reaction, p.workflow_type, p.delivery)
            if p.delivery is not None
            else self._react(event, p.reaction, p.workflow_type)
            for p in plan.reactions
        ]
        outcomes = list(await asyncio.gather(*runs))
        return RouterResult(event_id=event.id, topic=event.topic, reactions=outcomes)

    async def _plan_from_live_registry(self, topic: str) -> RoutePlan:
        """The plan of routers started before it was recorded: replaying one reads the
        registry as it is now, and asks for the configuration only if a reaction matches."""
        candidates = registry.reactions_for(topic)
        if not candidates:
            return RoutePlan(reactions=[])
        config = await workflow.execute_local_activity_method(
            ConfigActivities.reactor_config, start_to_close_timeout=timedelta(seconds=10)
        )
        # Those routers started every reaction as a child, deliveries too.
        return registry.plan_for(topic, config, deliveries=False)

    async def _skipped(self, reaction: str, reason: str) -> ReactionOutcome:
        return ReactionOutcome(reaction=reaction, status="skipped", detail=reason)

    async def _deliver(
        self, event: LikeMagicEvent, reaction: str, workflow_type: str, activity: str
    ) -> ReactionOutcome:
        """A reaction whose work is one activity (a delivery to a long-running
        workflow, the welcome email's lookup and send), run by the router itself as an
        activity with the ID ``<event id>/<reaction>`` (three events in the router,
        instead of an execution of 11 or more and three in the router). When its three tries
        fail, the reaction's workflow ``<event id>/<reaction>`` runs it with the
        integration failure policy, so a failure is an execution as before: alerted,
        listed by `reactor failed`, replayable. (Which way runs is recorded in the
        plan, so replays keep it.) Not a local activity: a router evicted from the
        worker's cache while one runs has it cancelled and run again, and its signal
        to the journey is what brings the journey into that cache."""
        send = activity in ROUTER_SENDS
        try:
            delivery = await workflow.execute_activity(
                activity,
                event,
                result_type=Delivery,
                activity_id=reaction_workflow_id(event.id, reaction),
                start_to_close_timeout=(
                    ROUTER_SEND_START_TO_CLOSE if send else INTEGRATION_START_TO_CLOSE
                ),
                schedule_to_close_timeout=None if send else ROUTER_DELIVERY_BUDGET,
                heartbeat_timeout=INTEGRATION_HEARTBEAT_TIMEOUT,
                retry_policy=ROUTER_DELIVERY_RETRY,
            )
        except ActivityError:
            workflow.logger.info("delivery %s failed in the router: its workflow runs", reaction)
            return await self._react(event, reaction, workflow_type)
        result = result_of(delivery)
        return ReactionOutcome(
            reaction=reaction, workflow_id=event.id, status=result.status, detail=result.detail
        )

    async def _react(
        self, event: LikeMagicEvent, reaction: str, workflow_type: str
    ) -> ReactionOutcome:
        child_id = reaction_workflow_id(event.id, reaction)
        try:
            # By type name, as planned: what runs does not depend on this worker's
            # registry. (A type no worker runs any more waits for one that does.)
            result = await workflow.execute_child_workflow(
                workflow_type,
                event,
                id=child_id,
                result_type=ReactionResult,
                search_attributes=workflow.info().typed_search_attributes,
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            if isinstance(err, ChildWorkflowError):
                detail = root_cause_message(err)
            else:
                detail = "a reaction execution with this ID already exists"
            workflow.logger.warning("reaction %s failed", reaction)
            alert = await self._alert(event, reaction, child_id, detail)
            return ReactionOutcome(
                reaction=reaction,
                workflow_id=child_id,
                status="failed",
                detail=detail,
                alert=alert,
            )
        return ReactionOutcome(
            reaction=reaction,
            workflow_id=child_id,
            status=result.status,
            detail=result.detail,
        )

    async def _alert(self, event: LikeMagicEvent, reaction: str, child_id: str, error: str) -> str:
        return await self._alert_failure(
            FailureAlert(
                event_id=event.id,
                topic=event.topic,
                reaction=reaction,
                workflow_id=child_id,
                error=error,
            )
        )

    async def _alert_failure(self, alert: FailureAlert) -> str:
        try:
            delivery = await workflow.execute_activity_method(
                SlackActivities.alert_reaction_failed,
                alert,
                start_to_close_timeout=INTEGRATION_START_TO_CLOSE,
                schedule_to_close_timeout=ALERT_SCHEDULE_TO_CLOSE,
                heartbeat_timeout=INTEGRATION_HEARTBEAT_TIMEOUT,
                retry_policy=INTEGRATION_RETRY_POLICY,
            )
        except ActivityError as err:
            return f"failed: {root_cause_message(err)}"
        return "sent" if delivery.status == "sent" else f"skipped: {delivery.detail}"
