"""Worker settings (README: "Worker settings"): the WORKER_* variables reach the worker,
and one slow provider holds at most its share of the activity slots, so the activities
of other reactions still run while it hangs."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.email import EmailActivities
from activities.likemagic import LikeMagicActivities
from activities.policy import provider_of
from activities.temporal import TemporalActivities
from tests.conftest import sample
from tests.helpers import make_settings, query_until, running_reactor, unique, until
from tests.integrations import integrations
from tests.sandbox_probe import ProbeReaction, ProbeRouter
from worker import ENGINE_WORKFLOWS, SplitWorkflowRunner, build_worker, workflow_runner
from workflows.guest_journey import JourneyState
from workflows.welcome_email import WelcomeEmailInRouter


async def test_the_worker_settings_reach_the_worker(temporal_env, tmp_path):
    settings = make_settings(
        tmp_path,
        WORKER_MAX_CONCURRENT_ACTIVITIES=7,
        WORKER_MAX_CONCURRENT_WORKFLOW_TASKS=9,
        WORKER_MAX_CACHED_WORKFLOWS=11,
        WORKER_WORKFLOW_TASK_POLLERS=3,
        WORKER_ACTIVITY_TASK_POLLERS=2,
    )
    config = build_worker(temporal_env.client, settings, activities=[]).config()
    assert config.get("max_concurrent_activities") == 7
    assert config.get("max_concurrent_workflow_tasks") == 9
    assert config.get("max_cached_workflows") == 11
    assert config.get("max_concurrent_workflow_task_polls") == 3
    assert config.get("max_concurrent_activity_task_polls") == 2


async def test_a_hanging_provider_holds_only_its_share_of_the_slots(temporal_env, tmp_path):
    client = temporal_env.client
    check_ins = [unique(sample("reservation_checked_in_seed_illustration")) for _ in range(3)]
    with integrations() as fakes:
        fakes.sendgrid.hold.set()
        async with running_reactor(
            client,
            tmp_path,
            # Three slots, at most two for SendGrid: the third welcome email waits
            # (refused and retried), the journeys' deliveries take the free slot.
            WORKER_MAX_CONCURRENT_ACTIVITIES=3,
            WORKER_MAX_ACTIVITIES_PER_PROVIDER=2,
            **fakes.settings(),
        ) as reactor:
            for event in check_ins:
                await reactor.post(event)
            for _ in range(1200):
                if len(fakes.sendgrid.requests) == 2:
                    break
                await asyncio.sleep(0.05)
            # Every journey gets its check-in while SendGrid holds two sends ...
            for event in check_ins:
                journey = client.get_workflow_handle(f"journey-{event['objectId']}")
                await query_until(
                    journey, JourneyState, lambda s: s.stage == "checked_in", "checked in"
                )
            # ... and the third send never reached SendGrid meanwhile.
            assert len(fakes.sendgrid.requests) == 2
            fakes.sendgrid.release()
            results = [await reactor.routed(event["id"]) for event in check_ins]
    welcomes = [next(o for o in r.reactions if o.reaction == "welcome-email") for r in results]
    assert [w.status for w in welcomes] == ["done"] * 3
    assert len(fakes.sendgrid.requests) == 3


def test_the_welcome_the_router_sends_counts_as_an_email(tmp_path):
    # Sent by the router or by its workflow, a welcome email takes one of SendGrid's
    # slots: a hanging SendGrid cannot hold twice its share through the two ways.
    settings = make_settings(tmp_path)
    email = EmailActivities(settings)
    in_router = WelcomeEmailInRouter(
        TemporalActivities(settings, None),  # type: ignore[arg-type]  # never called here
        LikeMagicActivities(settings),
        email,
    )
    assert provider_of(in_router.send_welcome_email) == provider_of(email.send_email)


def test_a_worker_without_a_sticky_cache_is_refused(tmp_path):
    # No cache cancels in-flight local activities at every eviction (README).
    with pytest.raises(ValidationError, match="WORKER_MAX_CACHED_WORKFLOWS"):
        make_settings(tmp_path, WORKER_MAX_CACHED_WORKFLOWS=0)


COMPLETED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
TASK_FAILED = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED


@pytest.mark.parametrize(
    ("mode", "refused"),
    [
        # The default: the reactions in the sandbox, reactor's engine without it.
        (None, {"ProbeReaction"}),
        ("on", {"ProbeReaction", "EventRouter"}),
        ("off", set()),
    ],
)
async def test_the_sandbox_refuses_io_in_the_workflows_the_setting_gives_it(
    temporal_env, tmp_path, mode, refused
):
    # The same workflow code, reading a file, under a reaction's type name and under the
    # router's: a workflow the sandbox runs has its task fail (and retried, never
    # completed); one it does not run reads the file.
    client = temporal_env.client
    env = {} if mode is None else {"WORKER_WORKFLOW_SANDBOX": mode}
    settings = make_settings(tmp_path, **env)
    target = tmp_path / "read-me.txt"
    target.write_text("read", encoding="utf-8")
    queue = f"sandbox-probe-{mode}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ProbeReaction, ProbeRouter],
        workflow_runner=workflow_runner(settings),
    ):
        for workflow_type in ("ProbeReaction", "EventRouter"):
            handle = await client.start_workflow(
                workflow_type, str(target), id=f"{queue}-{workflow_type}", task_queue=queue
            )

            async def outcome() -> EventType.ValueType | None:
                async for event in handle.fetch_history_events():  # noqa: B023
                    if event.event_type in (COMPLETED, TASK_FAILED):
                        return event.event_type
                return None

            ended = await until(outcome, f"{workflow_type} completed or its task failed")
            assert ended == (TASK_FAILED if workflow_type in refused else COMPLETED)
            if ended == COMPLETED:
                assert await handle.result() == "read"
            else:
                await handle.terminate("probe done")


async def test_without_the_sandbox_reactions_run_the_same(temporal_env, tmp_path):
    # WORKER_WORKFLOW_SANDBOX=off runs workflow code unsandboxed (cheaper per workflow
    # task, README: "What an event costs"); the default runs the reactions in the
    # sandbox and reactor's engine (router, journeys, assignments) without it.
    client = temporal_env.client
    default = build_worker(client, make_settings(tmp_path), activities=[]).config()
    runner = default.get("workflow_runner")
    assert isinstance(runner, SplitWorkflowRunner)
    assert runner.unsandboxed == ENGINE_WORKFLOWS
    assert isinstance(runner.runner_for("WelcomeEmail"), SandboxedWorkflowRunner)
    assert isinstance(runner.runner_for("EventRouter"), UnsandboxedWorkflowRunner)
    on = build_worker(client, make_settings(tmp_path, WORKER_WORKFLOW_SANDBOX="on"), activities=[])
    assert isinstance(on.config().get("workflow_runner"), SandboxedWorkflowRunner)
    event = unique(sample("reservation_checked_in_seed_illustration"))
    async with running_reactor(client, tmp_path, WORKER_WORKFLOW_SANDBOX="off") as reactor:
        worker = build_worker(
            client, reactor.settings, task_queue="runner-check", activities=[]
        ).config()
        assert isinstance(worker.get("workflow_runner"), UnsandboxedWorkflowRunner)
        await reactor.post(event)
        result = await reactor.routed(event["id"])
    assert {(o.reaction, o.status) for o in result.reactions} >= {
        ("welcome-email", "done"),
        ("guest-journey", "done"),
    }
    with pytest.raises(ValidationError, match="WORKER_WORKFLOW_SANDBOX"):
        make_settings(tmp_path, WORKER_WORKFLOW_SANDBOX="maybe")
