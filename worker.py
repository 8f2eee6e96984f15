"""The reactor worker: runs the router, every reaction and their activities.

    python worker.py        (or: reactor worker)

Connects with TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, polls REACTOR_TASK_QUEUE
(default `reactor`), and on SIGTERM or SIGINT stops polling, lets in-flight
activities finish (up to the graceful timeout) and exits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.policy import Heartbeats, ProviderShare
from activities.roster import check_roster
from activities.targets import read_targets
from activities.temporal import HOUSEKEEPING_WORKFLOW, JOURNEY_WORKFLOW, TemporalActivities
from core.logging import configure_logging, fields
from core.process import exit_now
from core.settings import Settings, load_settings, problems
from core.temporal import connect
from storage.effects import EffectsLedger
from workflows import registry
from workflows.router import ROUTER_WORKFLOW

log = logging.getLogger("reactor.worker")

GRACEFUL_SHUTDOWN = timedelta(seconds=20)

# The sandbox re-imports a workflow's modules for every run. These are free of
# side effects and state, so sharing the worker's copies is safe, and makes
# starting a worker and running each workflow task many times cheaper. Our own
# `workflows` modules too (their module-level names are constants, and the registry
# was already shared): a check-in's worker CPU went from 144 to 86 ms (bench/README.md).
# The price: the sandbox no longer proxies what those modules import, so a clock read
# there is not refused at run time; the replay tests and `reactor check-replay` run
# every history with STRICT_WORKFLOW_RUNNER, which re-imports them restricted.
STRICT_PASSTHROUGH = ("pydantic", "pydantic_core", "core", "activities", "zoneinfo")
PASSTHROUGH_MODULES = (*STRICT_PASSTHROUGH, "workflows")
_DEFAULT = SandboxRestrictions.default
_RESTRICTIONS = dataclasses.replace(
    _DEFAULT,
    # Local times of properties need zoneinfo.ZoneInfo, which the sandbox wraps in a
    # proxy that datetime rejects. Its tz database reads are deterministic.
    invalid_module_members=_DEFAULT.invalid_module_members.with_child_unrestricted(
        "zoneinfo", "ZoneInfo"
    ),
)
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=_RESTRICTIONS.with_passthrough_modules(*PASSTHROUGH_MODULES)
)
STRICT_WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=_RESTRICTIONS.with_passthrough_modules(*STRICT_PASSTHROUGH)
)

# The workflows every event or booking goes through: reactor's engine, not reactions.
# With WORKER_WORKFLOW_SANDBOX=reactions (the default) they run without the sandbox.
ENGINE_WORKFLOWS = frozenset({ROUTER_WORKFLOW, JOURNEY_WORKFLOW, HOUSEKEEPING_WORKFLOW})


class SplitWorkflowRunner(WorkflowRunner):
    """Runs the workflow types ``unsandboxed`` names without the sandbox, every other
    type (the reactions, those a hotel developer adds among them) in it."""

    def __init__(self, unsandboxed: frozenset[str], sandbox: WorkflowRunner) -> None:
        self.unsandboxed = unsandboxed
        self.sandbox = sandbox
        self.plain = UnsandboxedWorkflowRunner()

    def runner_for(self, workflow_type: str) -> WorkflowRunner:
        return self.plain if workflow_type in self.unsandboxed else self.sandbox

    def prepare_workflow(self, defn: Any) -> None:
        self.runner_for(defn.name or "").prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return self.runner_for(det.defn.name or "").create_instance(det)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.sandbox.set_worker_level_failure_exception_types(types)
        self.plain.set_worker_level_failure_exception_types(types)


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """The runner WORKER_WORKFLOW_SANDBOX chooses (README: "What an event costs")."""
    if settings.worker_workflow_sandbox == "off":
        return UnsandboxedWorkflowRunner()
    if settings.worker_workflow_sandbox == "reactions":
        return SplitWorkflowRunner(ENGINE_WORKFLOWS, WORKFLOW_RUNNER)
    return WORKFLOW_RUNNER


def build_worker(
    client: Client,
    settings: Settings,
    task_queue: str | None = None,
    activities: Sequence[Callable[..., Any]] | None = None,
    **options: Any,
) -> Worker:
    """A worker with everything the registry holds (the tests use this too; they may
    pass ``activities`` to stand in for some of them, and other Worker ``options``)."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=registry.workflow_classes(),
        activities=(
            activities if activities is not None else registry.build_activities(settings, client)
        ),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        workflow_runner=workflow_runner(settings),
        interceptors=[
            # Not Temporal itself: the deliveries the router runs must not be refused.
            ProviderShare(
                settings.worker_max_activities_per_provider, exempt=[TemporalActivities.__name__]
            ),
            Heartbeats(),
            *options.pop("interceptors", []),
        ],
        **{**worker_tuning(settings), **options},
    )


def worker_tuning(settings: Settings) -> dict[str, Any]:
    """The Worker options the WORKER_* settings choose (README: "Worker settings")."""
    return {
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_task_polls": settings.worker_workflow_task_pollers,
        "max_concurrent_activity_task_polls": settings.worker_activity_task_pollers,
    }


def metrics_runtime(settings: Settings, host: str = "0.0.0.0") -> Runtime | None:
    """A runtime serving the SDK's metrics (task latencies, slots, polls, failures) in
    Prometheus format on WORKER_METRICS_PORT; None while that is unset."""
    if settings.worker_metrics_port is None:
        return None
    # Every interface: in a container, the scraper comes from outside.
    address = f"{host}:{settings.worker_metrics_port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


async def run_worker(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(settings, runtime=metrics_runtime(settings))
    # One effects ledger for the worker's sends, in reactor's store (INTAKE_DATABASE_URL).
    ledger = EffectsLedger(settings.intake_database_url)
    worker = build_worker(
        client, settings, activities=registry.build_activities(settings, client, ledger)
    )
    log.info(
        "worker started",
        extra=fields(
            address=settings.temporal_address,
            namespace=settings.temporal_namespace,
            task_queue=settings.task_queue,
            metrics_port=settings.worker_metrics_port,
        ),
    )
    try:
        async with worker:
            await stop.wait()
            log.info("worker stopping: finishing in-flight tasks")
    finally:
        await ledger.close()
    log.info("worker stopped")


def checked_settings() -> Settings:
    """The settings, with what workflows will use checked now: a time zone, quiet-hours
    window, roster shift or forward target that would only fail inside a workflow
    stops the start; so does a missing encryption key (guest data would reach Temporal
    in plain text)."""
    try:
        settings = load_settings()
    except ValidationError as err:
        raise ValueError(problems(err)) from None
    if "housekeeping" not in settings.disabled_reaction_names():
        check_roster(settings.housekeeping_roster)
    read_targets(settings.forward_targets)
    settings.check_encryption_keys()
    return settings


def main() -> None:
    try:
        settings = checked_settings()
    except ValueError as err:
        configure_logging("INFO", "text")
        log.error("worker not started: invalid configuration: %s", err)
        exit_now(2)
    configure_logging(settings.log_level, settings.log_format)
    status = 0
    try:
        asyncio.run(run_worker(settings))
    except Exception:
        log.exception("worker failed")
        status = 1
    exit_now(status)


if __name__ == "__main__":
    main()
