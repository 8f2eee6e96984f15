"""A delivery to a long-running workflow is run by the router itself (an activity with
the ID `<event id>/<reaction>`); when that fails, the reaction's own workflow
`<event id>/<reaction>` runs it, with the failure policy, as before (README: "What an
event costs")."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from activities.email import EmailActivities, outbox_files
from activities.likemagic import LikeMagicActivities
from activities.policy import Delivery
from activities.temporal import TemporalActivities
from cli.status import event_status
from core.events import LikeMagicEvent
from tests.conftest import sample
from tests.fakes import FakeService
from tests.helpers import by_name, make_settings, running_reactor, unique
from workflows.reaction import RouterResult
from workflows.router import ROUTER_WORKFLOW
from workflows.welcome_email import WelcomeEmailInRouter


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


def welcome_done(result: RouterResult, status: dict[str, Any], how: str) -> dict[str, Any]:
    """The welcome email's outcome is done with ``welcome email <how>`` in the router's
    result and in `reactor status`; its row there."""
    welcome = by_name(result)["welcome-email"]
    assert (welcome.status, welcome.detail) == ("done", f"welcome email {how}")
    [row] = [r for r in status["reactions"] if r["reaction"] == "welcome-email"]
    assert (row["outcome"], row["detail"]) == ("done", welcome.detail)
    return row


async def test_the_router_sends_the_welcome_email_itself(temporal_env, tmp_path):
    client = temporal_env.client
    created = unique(sample("reservation_created"))
    # The check-in names no guest: the welcome asks the reservation's journey.
    checked_in = unique(sample("reservation_checked_in"), objectId=created["objectId"])
    async with running_reactor(client, tmp_path) as reactor:
        for event in (created, checked_in):
            await reactor.post(event)
            await reactor.routed(event["id"])
        result = await reactor.routed(checked_in["id"])
        status = await event_status(client, reactor.settings, checked_in["id"])
    row = welcome_done(result, status, "via outbox (guest from the reservation's journey)")
    assert row["execution"] == "in router"
    [mail] = outbox_files(reactor.settings.email_outbox_dir, f"{checked_in['id']}/welcome-email")
    assert "To: ana.silva@example.com" in mail.read_text()
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"{checked_in['id']}/welcome-email").describe()
    history = await client.get_workflow_handle(checked_in["id"]).fetch_history()
    scheduled = {
        (a.activity_id, a.activity_type.name)
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        for a in [e.activity_task_scheduled_event_attributes]
    }
    assert scheduled == {
        (f"{checked_in['id']}/welcome-email", "send_welcome_email"),
        (f"{checked_in['id']}/guest-journey", "deliver_reservation_event"),
    }


async def test_a_welcome_sent_in_the_router_is_not_sent_again_by_its_workflow(
    temporal_env, tmp_path
):
    """The router's tries send, then lose their answer: the reaction's workflow, which
    runs it again with the same key, does not send a second email (effects ledger)."""
    client = temporal_env.client
    event = unique(sample("reservation_checked_in_seed_illustration"))
    with FakeService() as sendgrid:
        settings = make_settings(
            tmp_path, SENDGRID_API_KEY="SG.test-key", SENDGRID_HOST=sendgrid.url
        )
        real = WelcomeEmailInRouter(
            TemporalActivities(settings, client),
            LikeMagicActivities(settings),
            EmailActivities(settings),
        )

        @activity.defn(name="send_welcome_email")
        async def sends_then_fails(event: LikeMagicEvent) -> Delivery:
            await real.send_welcome_email(event)
            raise RuntimeError("the answer was lost")

        async with running_reactor(
            client,
            tmp_path,
            stand_ins=[sends_then_fails],
            SENDGRID_API_KEY="SG.test-key",
            SENDGRID_HOST=sendgrid.url,
        ) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])
            status = await event_status(client, reactor.settings, event["id"])
    row = welcome_done(result, status, "via sendgrid (guest from the event)")
    assert row["execution"] != "in router"
    assert len(sendgrid.requests) == 1  # three tries in the router, one by the workflow


async def test_a_router_records_its_plan_without_a_patch_marker(temporal_env, tmp_path):
    # The webhook starts a router with its shape in the memo: it records its plan
    # (a local activity marker) with no patch marker and no TemporalChangeVersion upsert.
    # A router started with the event alone, as every router was before, still records
    # the patch marker, and both route alike.
    client = temporal_env.client
    event = unique(sample("reservation_checked_in_seed_illustration"))
    old = unique(sample("reservation_checked_in_seed_illustration"))
    async with running_reactor(client, tmp_path) as reactor:
        await reactor.post(event)
        new_result = await reactor.routed(event["id"])
        old_result = await client.execute_workflow(
            ROUTER_WORKFLOW,
            LikeMagicEvent.model_validate(old),
            id=old["id"],
            task_queue=reactor.settings.task_queue,
            result_type=RouterResult,
        )

    async def kinds(event_id: str) -> list[str]:
        history = await client.get_workflow_handle(event_id).fetch_history()
        return [
            e.marker_recorded_event_attributes.marker_name
            if e.HasField("marker_recorded_event_attributes")
            else EventType.Name(e.event_type)
            for e in history.events
        ]

    new, before = await kinds(event["id"]), await kinds(old["id"])
    assert "core_patch" not in new and "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in new
    assert new.count("core_local_activity") == 1  # the plan, recorded
    assert "core_patch" in before and "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" in before
    # The first workflow task's commands: the plan at once, against patch, upsert, plan.
    assert new[4] == "core_local_activity"
    assert before[4:7] == [
        "core_patch",
        "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        "core_local_activity",
    ]
    outcomes = [(o.reaction, o.status) for o in new_result.reactions]
    assert outcomes == [(o.reaction, o.status) for o in old_result.reactions]
    assert ("welcome-email", "done") in outcomes
