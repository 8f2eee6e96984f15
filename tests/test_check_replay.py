"""`reactor check-replay` against the dev server: the histories of running and recently
closed executions replay against this code (exit 0), or the deploy is refused (exit 1)."""

from __future__ import annotations

import json
import uuid

from temporalio.api.enums.v1 import EventType

from core.events import Topic
from tests.conftest import sample
from tests.helpers import shifted, unique, until, weeks_ahead
from tests.reactions import DeployCheckAfter, DeployCheckBefore
from tests.test_cli import live_reactor
from workflows import registry
from workflows.reaction import Reaction

# The journey delivery runs in the router (an activity): no JourneyDelivery execution.
JOURNEY_TYPES = ["EventRouter", "BookingConfirmation", "GuestJourney"]


def replayed(result) -> dict[str, int]:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return {t["workflow_type"]: t["replayed"] for t in json.loads(result.stdout)["types"]}


async def test_running_and_closed_executions_replay(temporal_env, tmp_path):
    async with live_reactor(temporal_env.client, tmp_path) as live:
        event = shifted(unique(sample("reservation_created")), weeks_ahead())
        await live.reactor("send", "-", input=json.dumps(event))
        router = live.client.get_workflow_handle(event["id"])
        await router.result()
        args = [a for t in JOURNEY_TYPES for a in ("--type", t)]

        async def all_seen():
            # Visibility lags a little behind the executions.
            counts = replayed(await live.reactor("check-replay", *args, "--json"))
            return counts if all(counts.values()) else None

        counts = await until(all_seen, "every type replayed", pause=0.2)
        text = await live.reactor("check-replay", *args)

    # The router and its reactions are closed; the guest's journey still waits (open).
    assert counts == {t: 1 for t in JOURNEY_TYPES}
    journey = live.client.get_workflow_handle(f"journey-{event['objectId']}")
    assert (await journey.describe()).status.name == "RUNNING"
    assert text.exit_code == 0, text.stderr
    assert f"3 history(ies) of task queue {live.settings.task_queue} replayed, 0 failed" in (
        text.stdout
    )


async def test_a_change_that_breaks_a_running_execution_exits_1(temporal_env, tmp_path):
    before = Reaction("deploy-check", DeployCheckBefore, topics=frozenset({Topic.MESSAGE_SENT}))
    after = Reaction("deploy-check", DeployCheckAfter, topics=frozenset({Topic.MESSAGE_SENT}))
    with registry.registered(before):
        async with live_reactor(temporal_env.client, tmp_path) as live:
            handle = await live.client.start_workflow(
                "DeployCheck",
                id=f"deploy-check-{uuid.uuid4()}",
                task_queue=live.settings.task_queue,
            )

            async def timer_started():
                events = [e.event_type async for e in handle.fetch_history_events()]
                return EventType.EVENT_TYPE_TIMER_STARTED in events

            await until(timer_started, "the timer started", pause=0.2)
            try:
                with registry.registered(after):
                    registry.REACTIONS.remove(before)
                    try:

                        async def listed():
                            result = await live.reactor("check-replay", "--type", "DeployCheck")
                            return (
                                result
                                if result.exit_code != 0 or "1 history" in result.stdout
                                else None
                            )

                        result = await until(listed, "the check-replay result", pause=0.2)
                    finally:
                        registry.REACTIONS.append(before)
            finally:
                await handle.terminate()

    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert handle.id in result.stdout
    assert "Nondeterminism" in result.stdout
    assert "1 failed: do not deploy" in result.stdout
