"""A delivery to a long-running workflow is run by the router itself (an activity with
the ID `<event id>/<reaction>`); when that fails, the reaction's own workflow
`<event id>/<reaction>` runs it, with the failure policy, as before (README: "What an
event costs")."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from activities.policy import Delivery
from cli.status import event_status
from core.events import LikeMagicEvent
from tests.conftest import sample
from tests.helpers import by_name, running_reactor, unique


async def test_the_router_delivers_to_the_journey_itself(temporal_env, tmp_path):
    client = temporal_env.client
    event = unique(sample("reservation_created"))
    async with running_reactor(client, tmp_path) as reactor:
        await reactor.post(event)
        result = await reactor.routed(event["id"])
        status = await event_status(client, reactor.settings, event["id"])
    outcome = by_name(result)["guest-journey"]
    assert outcome.status == "done"
    assert outcome.workflow_id == event["id"]  # it ran in the router
    # `reactor status` shows it done, run in the router, linking to the router.
    [row] = [r for r in status["reactions"] if r["reaction"] == "guest-journey"]
    assert row["outcome"] == "done" and row["execution"] == "in router"
    assert row["link"].endswith(f"/workflows/{event['id']}")
    # No execution of its own, and the journey has the event.
    try:
        await client.get_workflow_handle(f"{event['id']}/guest-journey").describe()
    except RPCError as err:
        assert "not found" in str(err)
    else:
        raise AssertionError("the delivery started an execution of its own")
    journey = await client.get_workflow_handle(f"journey-{event['objectId']}").describe()
    assert journey.status == WorkflowExecutionStatus.RUNNING
    # In the router's history (and UI), the delivery is the activity <event id>/guest-journey.
    history = await client.get_workflow_handle(event["id"]).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert [(a.activity_id, a.activity_type.name) for a in scheduled] == [
        (f"{event['id']}/guest-journey", "deliver_reservation_event")
    ]


async def test_a_delivery_that_fails_in_the_router_runs_as_its_own_workflow(temporal_env, tmp_path):
    calls: list[str] = []

    @activity.defn(name="deliver_reservation_event")
    async def flaky_in_router(event: LikeMagicEvent) -> Delivery:
        calls.append(activity.info().workflow_type)
        if activity.info().workflow_type == "EventRouter":
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
    assert calls == ["EventRouter"] * 3 + ["JourneyDelivery"]
