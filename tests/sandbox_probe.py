"""Workflows that read a file, which the sandbox refuses at run time: one under a
reaction's name of its own, one under the router's type name, so that a test can see
which types WORKER_WORKFLOW_SANDBOX runs in the sandbox (tests/test_worker_settings.py).
Run only on a task queue of their own."""

from __future__ import annotations

from temporalio import workflow


async def read(path: str) -> str:
    # I/O in workflow code: the sandbox raises RestrictedWorkflowAccessError here.
    with open(path, encoding="utf-8") as file:  # noqa: ASYNC230 - the point
        return file.read()


@workflow.defn(name="ProbeReaction")
class ProbeReaction:
    @workflow.run
    async def run(self, path: str) -> str:
        return await read(path)


@workflow.defn(name="EventRouter")
class ProbeRouter:
    @workflow.run
    async def run(self, path: str) -> str:
        return await read(path)
