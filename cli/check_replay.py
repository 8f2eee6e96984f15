"""`reactor check-replay`: replay live histories against the current code before a deploy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from temporalio.client import (
        Client,
        WorkflowExecution,
        WorkflowHistory,
    )


from cli.common import (
    CommandError,
    JsonOption,
    _checked,
    _connect,
    _echo_json,
    _fail,
    _load,
    _one_line,
    _run,
    _table,
    app,
    parse_since,
)

# --- check-replay ------------------------------------------------------------------------


def replay_sample_queries(workflow_type: str, task_queue: str, since: datetime) -> list[str]:
    """The visibility queries of a type's running executions and of those closed since."""
    base = (
        f"WorkflowType = '{_checked(workflow_type, 'workflow type')}' "
        f"AND TaskQueue = '{_checked(task_queue, 'task queue')}'"
    )
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        f"{base} AND ExecutionStatus = 'Running'",
        f"{base} AND ExecutionStatus != 'Running' AND CloseTime >= '{stamp}'",
    ]


async def _histories(
    client: Client, executions: list[WorkflowExecution]
) -> AsyncIterator[WorkflowHistory]:
    for e in executions:
        yield await client.get_workflow_handle(e.id, run_id=e.run_id).fetch_history()


async def check_replay(
    client: Client, types: list[str], task_queue: str, since: datetime, limit: int
) -> list[dict[str, Any]]:
    """Replay the histories of a sample of each type's executions against this code.

    One row per workflow type: how many histories were replayed, and each failure
    (workflow ID, run ID, the error). Open histories replay up to where they are.
    """
    from temporalio.worker import Replayer

    from worker import STRICT_WORKFLOW_RUNNER
    from workflows import registry

    replayer = Replayer(
        workflows=registry.workflow_classes(),
        workflow_runner=STRICT_WORKFLOW_RUNNER,
        data_converter=client.data_converter,
    )
    rows = []
    for workflow_type in types:
        checked = 0
        failures = []
        for query in replay_sample_queries(workflow_type, task_queue, since):
            executions = [e async for e in client.list_workflows(query, limit=limit)]
            ids = {e.run_id: e.id for e in executions}
            checked += len(executions)

            results = await replayer.replay_workflows(
                _histories(client, executions), raise_on_replay_failure=False
            )
            failures += [
                {"workflow_id": ids[run_id], "run_id": run_id, "error": _one_line(str(err))}
                for run_id, err in results.replay_failures.items()
            ]
        rows.append({"workflow_type": workflow_type, "replayed": checked, "failures": failures})
    return rows


@app.command("check-replay")
def check_replay_command(
    workflow_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this workflow type (repeatable; default: every one)."),
    ] = None,
    since: Annotated[
        str, typer.Option(help="Closed executions of this window too: 24h, 7d, or an ISO time.")
    ] = "24h",
    limit: Annotated[
        int,
        typer.Option(help="At most this many running, and this many closed, per type.", min=1),
    ] = 20,
    task_queue: Annotated[
        str | None,
        typer.Option(help="Executions of this task queue (default: REACTOR_TASK_QUEUE)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay running and recently closed executions against this code, before a deploy.

    Fetches the histories of a sample of each workflow type's running executions and of
    those closed within --since from Temporal, and replays them with the workflows of
    this checkout. Exit status 0 when all replay, 1 when one does not (deploying this
    code would break it), 2 when Temporal cannot be reached.
    """
    from workflows import registry
    from workflows.reaction import workflow_type as type_name

    settings = _load("check-replay")
    known = [type_name(c) for c in registry.workflow_classes()]
    types = workflow_type or known
    unknown = sorted(set(types) - set(known))
    if unknown:
        _fail(
            "check-replay",
            f"unknown workflow type {', '.join(unknown)}; known: {', '.join(known)}",
            2,
        )
    try:
        start = parse_since(since)
    except CommandError as err:
        _fail("check-replay", str(err), err.status)
    queue = task_queue or settings.task_queue

    async def work() -> list[dict[str, Any]]:
        return await check_replay(await _connect(settings), types, queue, start, limit)

    rows = _run("check-replay", work())
    failures = [f | {"workflow_type": r["workflow_type"]} for r in rows for f in r["failures"]]
    total = sum(r["replayed"] for r in rows)
    if as_json:
        _echo_json({"task_queue": queue, "since": start, "types": rows, "failed": len(failures)})
    else:
        table = [[r["workflow_type"], str(r["replayed"]), str(len(r["failures"]))] for r in rows]
        typer.echo(_table(["workflow type", "replayed", "failed"], table))
        for f in failures:
            typer.echo(
                f"\n{f['workflow_type']} {f['workflow_id']} (run {f['run_id']}):\n  {f['error']}"
            )
        verdict = "do not deploy" if failures else "all replay"
        typer.echo(
            f"\n{total} history(ies) of task queue {queue} replayed, "
            f"{len(failures)} failed: {verdict}"
        )
    if failures:
        raise typer.Exit(1)
