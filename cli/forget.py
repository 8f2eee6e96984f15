"""`reactor forget`: erase a guest from Temporal (GDPR art. 17, nFADP).

Finds every execution about a reservation or a guest profile through the search
attributes (ObjectId, ReservationId, ProfileId) and the workflow IDs derived from the
events (`<event id>/<reaction>`, `journey-<reservation>`), terminates the running ones,
deletes every one (history and visibility record), and removes the dev outbox's emails
they wrote. Idempotent: what is already gone is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import (
    CommandError,
    JsonOption,
    _checked,
    _connect,
    _echo_json,
    _fail,
    _load,
    _run,
    _table,
    app,
)
from core.settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client

REASON = "erased on request (reactor forget)"
# Events may still arrive while forgetting: look again, a few times, for new executions.
PASSES = 3


@dataclass
class Execution:
    workflow_id: str
    run_id: str
    workflow_type: str
    running: bool
    action: str = ""
    emails: list[str] = field(default_factory=list)


@dataclass
class Found:
    reservations: set[str] = field(default_factory=set)
    profiles: set[str] = field(default_factory=set)
    executions: dict[tuple[str, str], Execution] = field(default_factory=dict)


async def _list(client: Client, query: str, found: Found) -> list[Execution]:
    from temporalio.client import WorkflowExecutionStatus

    from core.temporal import OBJECT_ID, OBJECT_TYPE

    new = []
    async for listed in client.list_workflows(query):
        key = (listed.id, listed.run_id)
        if key in found.executions:
            continue
        execution = Execution(
            listed.id,
            listed.run_id,
            listed.workflow_type,
            listed.status == WorkflowExecutionStatus.RUNNING,
        )
        found.executions[key] = execution
        new.append(execution)
        # A profile's reservations are the guest's too.
        attributes = listed.typed_search_attributes
        object_id = attributes.get(OBJECT_ID)
        if attributes.get(OBJECT_TYPE) == "RESERVATION" and object_id:
            found.reservations.add(object_id)
    return new


async def find(client: Client, found: Found) -> list[Execution]:
    """Executions about the reservations and profiles of ``found`` not seen before."""
    new: list[Execution] = []
    for profile in sorted(found.profiles):
        value = _checked(profile, "profile")
        new += await _list(client, f'ObjectId = "{value}" OR ProfileId = "{value}"', found)
    for reservation in sorted(found.reservations):
        value = _checked(reservation, "reservation")
        query = (
            f'ObjectId = "{value}" OR ReservationId = "{value}" OR WorkflowId = "journey-{value}"'
        )
        new += await _list(client, query, found)
    # The reactions of every event found, whatever attributes they carry (a replay).
    for router in [e for e in new if e.workflow_type == "EventRouter"]:
        prefix = _checked(router.workflow_id, "event id")
        new += await _list(client, f'WorkflowId STARTS_WITH "{prefix}/"', found)
    return new


async def erase(client: Client, execution: Execution, outbox: Path) -> None:
    """Terminate (when running) and delete one execution, and remove its emails."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
    from temporalio.service import RPCError, RPCStatusCode

    from activities.email import outbox_files

    done = []
    if execution.running:
        handle = client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id)
        try:
            await handle.terminate(reason=REASON)
            done.append("terminated")
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # closed meanwhile
                raise
    try:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=execution.workflow_id, run_id=execution.run_id
                ),
            )
        )
        done.append("deleted")
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        done.append("already gone")
    for path in outbox_files(outbox, execution.workflow_id):
        path.unlink(missing_ok=True)
        execution.emails.append(path.name)
    execution.action = ", ".join(done)


async def forget_guest(
    client: Client,
    settings: Settings,
    reservations: list[str],
    profiles: list[str],
    *,
    dry_run: bool,
    confirm: Any = None,
) -> list[Execution]:
    """Find and (unless ``dry_run``) erase; ``confirm(executions)`` may say no."""
    found = Found(set(reservations), set(profiles))
    executions = await find(client, found)
    if dry_run or not executions:
        return executions
    if confirm is not None and not confirm(executions):
        raise CommandError("nothing erased", 1)
    erased: list[Execution] = []
    for _ in range(PASSES):
        for execution in executions:
            await erase(client, execution, settings.email_outbox_dir)
        erased += executions
        executions = await find(client, found)  # events that arrived meanwhile
        if not executions:
            break
    return erased


def _ask(what: str) -> Any:
    def confirm(executions: list[Execution]) -> bool:
        typer.echo(_rows(executions, dry_run=True))
        return typer.confirm(
            f"\nErase these {len(executions)} execution(s) about {what} for good?", default=False
        )

    return confirm


def _rows(executions: list[Execution], *, dry_run: bool) -> str:
    headers = ["workflow id", "type", "state", "done" if not dry_run else "would"]
    rows = [
        [
            e.workflow_id,
            e.workflow_type,
            "running" if e.running else "closed",
            (e.action + (f"; {len(e.emails)} email(s) removed" if e.emails else ""))
            if not dry_run
            else ("terminate, delete" if e.running else "delete"),
        ]
        for e in executions
    ]
    return _table(headers, rows)


@app.command()
def forget(
    reservation: Annotated[
        list[str] | None,
        typer.Option("--reservation", help="A reservation id (objectId of its events)."),
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", help="A guest profile id (objectId, or userProfileId)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be erased; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (for scripts).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a guest: terminate and delete every execution about a reservation or a
    profile, and remove their outbox emails. Idempotent."""
    reservations, profiles = reservation or [], profile or []
    if not reservations and not profiles:
        _fail("forget", "give --reservation R or --profile P", 2)
    settings = _load("forget")
    if as_json and not (yes or dry_run):
        _fail("forget", "--json needs --yes (or --dry-run): there is no one to ask", 2)
    what = ", ".join(
        [*(f"reservation {r}" for r in reservations), *(f"profile {p}" for p in profiles)]
    )
    confirm = None if (yes or dry_run) else _ask(what)

    async def work() -> list[Execution]:
        client = await _connect(settings)
        return await forget_guest(
            client, settings, reservations, profiles, dry_run=dry_run, confirm=confirm
        )

    executions = _run("forget", work())
    if as_json:
        _echo_json(
            {
                "dry_run": dry_run,
                "executions": [
                    {
                        "workflow_id": e.workflow_id,
                        "run_id": e.run_id,
                        "workflow_type": e.workflow_type,
                        "running": e.running,
                        "action": e.action,
                        "emails_removed": e.emails,
                    }
                    for e in executions
                ],
            }
        )
        return
    if not executions:
        typer.echo(f"nothing about {what} in namespace {settings.temporal_namespace}")
        return
    typer.echo(_rows(executions, dry_run=dry_run))
    verb = "would erase" if dry_run else "erased"
    typer.echo(f"\n{verb} {len(executions)} execution(s) about {what}")
