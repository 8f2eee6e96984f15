"""A delivery to a long-running workflow is run by the router itself (a local activity);
when that fails, the reaction's own workflow `<event id>/<reaction>` runs it, with the
failure policy, as before (README: "What an event costs")."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from activities.policy import Delivery
from core.events import LikeMagicEvent
from tests.conftest import sample
from tests.helpers import by_name, running_reactor, unique


async def test_the_router_delivers_to_the_journey_itself(temporal_env, tmp_path):
    client = temporal_env.client
    event = unique(sample("reservation_created"))
    async with running_reactor(client, tmp_path) as reactor:
        await reactor.post(event)
        result = await reactor.routed(event["id"])
    outcome = by_name(result)["guest-journey"]
    assert outcome.status == "done"
    assert outcome.workflow_id == event["id"]  # it ran in the router
    # No execution of its own, and the journey has the event.
    try:
        await client.get_workflow_handle(f"{event['id']}/guest-journey").describe()
    except RPCError as err:
        assert "not found" in str(err)
    else:
        raise AssertionError("the delivery started an execution of its own")
    journey = await client.get_workflow_handle(f"journey-{event['objectId']}").describe()
    assert journey.status == WorkflowExecutionStatus.RUNNING


async def test_a_delivery_that_fails_in_the_router_runs_as_its_own_workflow(temporal_env, tmp_path):
    calls: list[bool] = []

    @activity.defn(name="deliver_reservation_event")
    async def flaky_in_router(event: LikeMagicEvent) -> Delivery:
        calls.append(activity.info().is_local)
        if activity.info().is_local:
            raise RuntimeError("signal-with-start refused")
        return Delivery.sent("temporal", detail="to the journey")

    client = temporal_env.client
    event = unique(sample("reservation_created"))
    async with running_reactor(client, tmp_path, stand_ins=[flaky_in_router]) as reactor:
        await reactor.post(event)
        result = await reactor.routed(event["id"])
    outcome = by_name(result)["guest-journey"]
    assert outcome.status == "done"
    assert outcome.workflow_id == f"{event['id']}/guest-journey"
    described = await client.get_workflow_handle(outcome.workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert described.parent_id == event["id"]
    # Three tries in the router, then one by the reaction's workflow.
    assert calls == [True, True, True, False]
