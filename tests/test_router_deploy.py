"""Deploys that change the registry never change what a running router does: the router
records its plan (which reactions, by workflow type) before starting any of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from tests.conftest import sample
from tests.helpers import by_name, polls, record_history, running_reactor, unique, worker_for
from tests.reactions import HELD, LATE, NOTE_THE_ROOM
from workflows import registry
from workflows.reaction import Reaction, RouterResult

# No sticky cache: every workflow task of a router replays its whole history, as on a
# worker that restarted into the new code.
NO_CACHE = {"max_cached_workflows": 0}


@contextmanager
def deployed(reactions: list[Reaction]) -> Iterator[None]:
    """The registry replaced, as by a deploy of other code, for the duration of a block."""
    before = list(registry.REACTIONS)
    registry.REACTIONS[:] = reactions
    try:
        yield
    finally:
        registry.REACTIONS[:] = before


async def children_settled(router: WorkflowHandle, completed: int) -> None:
    """Wait until the router has seen ``completed`` children complete and one more start."""
    async for _ in polls():
        kinds = [e.event_type async for e in router.fetch_history_events()]
        done = kinds.count(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED)
        started = kinds.count(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED)
        if done >= completed and started > done:
            return
    raise AssertionError(f"the router's children never settled: {kinds}")


async def completed(router: WorkflowHandle) -> RouterResult:
    """The router's result; a failed workflow task (a nondeterminism error: the router
    stuck Running) fails the test at once instead of waiting forever."""
    async for _ in polls():
        async for e in router.fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                cause = e.workflow_task_failed_event_attributes.failure.message
                raise AssertionError(f"router {router.id} is stuck: {cause}")
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                return await router.result()
    raise AssertionError(f"router {router.id} did not complete")


async def release(client, event_id: str) -> None:
    """Signal the event's held reaction, once it has started."""
    held = client.get_workflow_handle(f"{event_id}/held")
    async for _ in polls():
        try:
            await held.signal("release")
            return
        except RPCError:
            pass
    await held.signal("release")


async def test_registry_changes_under_routers_in_flight(temporal_env, tmp_path):
    client = temporal_env.client
    # Check-ins that name their guest (the seed's illustration): the welcome needs no journey.
    events = [unique(sample("reservation_checked_in_seed_illustration")) for _ in range(2)]
    async with running_reactor(client, tmp_path, worker=False) as reactor:
        with registry.registered(NOTE_THE_ROOM, HELD):
            production = [r for r in registry.REACTIONS if r not in (NOTE_THE_ROOM, HELD)]
            async with worker_for(client, reactor.settings):
                for event in events:
                    assert (await reactor.post(event)).json()["status"] == "accepted"
                for event in events:
                    # note-the-room is done, welcome-email and guest-journey run by the
                    # router itself (no child); held waits.
                    await children_settled(reactor.router(event["id"]), completed=1)
            await record_history("router_waiting_for_reaction", reactor.router(events[0]["id"]))
            await record_history(
                "router_delivered_by_activity_waiting", reactor.router(events[0]["id"])
            )
            await record_history(
                "router_welcome_in_router_waiting", reactor.router(events[0]["id"])
            )
            await record_history(
                "router_without_patch_marker_waiting", reactor.router(events[0]["id"])
            )

        # The deploy: a reaction added in front, one removed, the others reordered.
        with deployed([LATE, HELD, *reversed(production)]):
            async with worker_for(client, reactor.settings, **NO_CACHE):
                for event in events:
                    await release(client, event["id"])
                results = [await completed(reactor.router(event["id"])) for event in events]

                after = unique(sample("reservation_checked_in_seed_illustration"))
                await reactor.post(after)
                await release(client, after["id"])
                result_after = await reactor.routed(after["id"])
        await record_history("router_across_a_deploy", reactor.router(events[0]["id"]))
        await record_history("router_delivered_by_activity", reactor.router(events[0]["id"]))
        await record_history("router_welcome_in_router", reactor.router(events[0]["id"]))
        await record_history("router_without_patch_marker", reactor.router(events[0]["id"]))

        for event in events:
            with pytest.raises(RPCError, match="not found"):
                await client.get_workflow_handle(f"{event['id']}/late").describe()

    for result in results:
        assert [(o.reaction, o.status) for o in result.reactions] == [
            ("welcome-email", "done"),
            ("guest-journey", "done"),
            ("activity-log", "skipped"),
            ("note-the-room", "done"),
            ("held", "done"),
        ]
        assert by_name(result)["held"].detail == "released"
    # A router started after the deploy follows the new registry.
    assert [(o.reaction, o.status) for o in result_after.reactions] == [
        ("late", "done"),
        ("held", "done"),
        ("activity-log", "skipped"),
        ("guest-journey", "done"),
        ("welcome-email", "done"),
    ]
