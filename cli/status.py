"""`reactor status` and `reactor failed`: an event's reactions, and what failed."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.settings import Settings

if TYPE_CHECKING:
    from temporalio.api.failure.v1 import Failure
    from temporalio.client import (
        Client,
        WorkflowExecution,
        WorkflowExecutionDescription,
    )


from cli.common import (
    ROUTER_ROW,
    CommandError,
    JsonOption,
    LimitOption,
    SinceOption,
    TopicOption,
    _connect,
    _describe,
    _echo_json,
    _execution,
    _fail,
    _load,
    _one_line,
    _reaction_names,
    _router,
    _run,
    _short,
    _table,
    _time,
    app,
    failed_query,
    parse_since,
)

# --- status ------------------------------------------------------------------------------


async def event_status(client: Client, settings: Settings, event_id: str) -> dict[str, Any]:
    """The router of an event and each reaction: the router's outcome (once it closed)
    and the latest run of the reaction's execution."""
    from temporalio.client import WorkflowExecutionStatus

    from core.links import workflow_url
    from core.temporal import TOPIC
    from workflows.reaction import RouterResult

    router = await _router(client, settings, event_id)
    topic = router.typed_search_attributes.get(TOPIC)
    outcomes: dict[str, dict[str, Any]] = {}
    if router.status == WorkflowExecutionStatus.COMPLETED:
        result = await client.get_workflow_handle(event_id, result_type=RouterResult).result()
        topic = topic or result.topic
        for outcome in result.reactions:
            outcomes[outcome.reaction] = {
                "outcome": outcome.status,
                "detail": outcome.detail,
                "alert": outcome.alert,
                "ran_in": outcome.workflow_id,
            }
    names = list(outcomes)
    for name in await _reaction_names(client, event_id, topic):
        if name not in names:
            names.append(name)
    reactions = []
    for name in names:
        workflow_id = f"{event_id}/{name}"
        described = await _describe(client, workflow_id)
        if (
            described is None
            and name not in outcomes
            and router.status != (WorkflowExecutionStatus.RUNNING)
        ):
            continue  # registered for the topic, but not for this worker's configuration
        row: dict[str, Any] = {"reaction": name, "workflow_id": workflow_id}
        row.update(outcomes.get(name, {"outcome": None, "detail": "", "alert": None}))
        row.update(_execution(described, settings, workflow_id))
        if described is None and row.pop("ran_in", None) == event_id:
            # A delivery the router ran itself: it shows in the router's history.
            row.update(
                execution="in router",
                link=workflow_url(settings.temporal_ui_url, settings.temporal_namespace, event_id),
            )
        row.pop("ran_in", None)
        reactions.append(row)
    for row in reactions:
        row["now"] = await _long_running_now(client, row["detail"] or "")
    return {
        "event_id": event_id,
        "topic": topic,
        "status": router.status.name if router.status else None,
        "run_id": router.run_id,
        "started": router.start_time,
        "closed": router.close_time,
        "link": workflow_url(settings.temporal_ui_url, settings.temporal_namespace, event_id),
        "reactions": reactions,
    }


async def _long_running_now(client: Client, detail: str) -> str | None:
    """Where the housekeeping assignment a reaction delivered to stands now (what it
    waits for and until when), read from its ``state`` query; None for other reactions."""
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    from workflows.housekeeping import AssignmentState

    found = re.search(r"delivered to (housekeeping-\S+)", detail)
    if found is None:
        return None
    workflow_id = found.group(1)
    try:
        state = await client.get_workflow_handle(workflow_id).query(
            "state", result_type=AssignmentState, rpc_timeout=timedelta(seconds=5)
        )
    except (RPCError, WorkflowQueryFailedError):
        return None  # past retention, or no worker to answer: the detail line stands
    line = f"{workflow_id} {state.status}"
    if state.status == "waiting_for_shift" and state.waiting_until:
        line += f": waits for {state.waiting_for}, until {state.waiting_until.isoformat()}"
    elif state.assignee is not None:
        line += f": {state.assignee.id}"
        if state.deadline and state.status == "assigned":
            line += f", due by {state.deadline.isoformat()}"
    return line


# Long-running workflows `reactor status` shows by their ID, from their `state` query.
LONG_RUNNING = ("GuestJourney", "HousekeepingAssignment")
# Guest data the journey's state holds: never printed.
PERSONAL = {"guest_email", "guest_name", "guest_phone"}


async def long_running_status(
    client: Client, settings: Settings, described: WorkflowExecutionDescription
) -> dict[str, Any]:
    """A journey or a housekeeping assignment: its execution and its ``state`` query
    (stage and messages; assignee, SLA and what it waits for), guest data left out."""
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    from core.links import workflow_url
    from workflows.guest_journey import JourneyState
    from workflows.housekeeping import AssignmentState

    state_type = JourneyState if described.workflow_type == "GuestJourney" else AssignmentState
    found: dict[str, Any] = {
        "workflow_id": described.id,
        "workflow_type": described.workflow_type,
        "status": described.status.name if described.status else None,
        "run_id": described.run_id,
        "started": described.start_time,
        "closed": described.close_time,
        "link": workflow_url(settings.temporal_ui_url, settings.temporal_namespace, described.id),
        "state": None,
        "problem": "",
    }
    try:
        state = await client.get_workflow_handle(described.id).query(
            "state", result_type=state_type, rpc_timeout=timedelta(seconds=5)
        )
    except (RPCError, WorkflowQueryFailedError) as err:
        found["problem"] = f"its state could not be read: {_one_line(str(err), 200)}"
        return found
    found["state"] = state.model_dump(mode="json", exclude=PERSONAL)
    return found


def _when(value: str | None) -> str:
    return _time(datetime.fromisoformat(value)) if value else "-"


def _long_running_lines(found: dict[str, Any]) -> list[str]:
    lines = [f"{found['workflow_id']}  {found['workflow_type']}  {found['status']}"]
    lines.append(f"  {found['link']}")
    state = found["state"]
    if state is None:
        return [*lines, f"  {found['problem']}"]
    if found["workflow_type"] == "GuestJourney":
        lines.append(f"stage {state['stage']} (as of {_when(state['stage_as_of'])})")
        lines.append(f"arrival {_when(state['arrival'])}  departure {_when(state['departure'])}")
        if state.get("idle_until"):
            lines.append(f"ends if nothing happens by {_when(state['idle_until'])}")
        rows = [
            [m["kind"], m["status"], _when(m["due"]), _when(m["sent_at"]), _short(m["detail"])]
            for m in state["messages"].values()
        ]
        lines += ["", _table(["message", "status", "due", "sent", "detail"], rows)]
        return lines
    assignee = state["assignee"]
    lines.append(f"status {state['status']}  task type {state['task_type'] or '-'}")
    if assignee:
        lines.append(f"assignee {assignee['id']}  due by {_when(state['deadline'])} (SLA)")
    if state["waiting_for"]:
        lines.append(f"waiting for {state['waiting_for']} until {_when(state['waiting_until'])}")
    lines.append(f"escalations {state['escalations']}  reassignments {state['reassignments']}")
    return lines


def _now_column(row: dict[str, Any]) -> str:
    if row["execution"] is None:
        return "not started" if row["outcome"] is None else "-"
    return str(row["execution"]) + (" (replayed)" if row["replayed"] else "")


@app.command()
def status(
    event_id: Annotated[
        str,
        typer.Argument(
            help="The event id (the router's workflow ID), or the ID of a journey "
            "(journey-<reservation>) or housekeeping assignment (housekeeping-<task>)."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Show an event's router and each reaction: outcome, latest run, Temporal UI link;
    `queued` while the event waits in the intake queue. Or a journey (stage, messages and
    when) or an assignment (assignee, SLA, waiting)."""
    from cli.intake import queued_event

    settings = _load("status")

    async def work() -> dict[str, Any]:
        # A queued event has no router yet: the queue answers, even while Temporal is down.
        queued = await queued_event(settings, event_id)
        if queued is not None:
            return {**queued, "status": "queued"}
        client = await _connect(settings)
        described = await _describe(client, event_id)
        if described is not None and described.workflow_type in LONG_RUNNING:
            return await long_running_status(client, settings, described)
        return await event_status(client, settings, event_id)

    found = _run("status", work())
    if as_json:
        _echo_json(found)
        return
    if found["status"] == "queued":
        typer.echo(
            f"event {event_id}  {found['topic']}  queued for {found['waiting_seconds']:.0f} s "
            "(in the intake queue, no router yet)"
        )
        typer.echo(f"  why: {found['why']}")
        return
    if "workflow_type" in found:
        typer.echo("\n".join(_long_running_lines(found)))
        return
    typer.echo(f"event {event_id}  {found['topic'] or ''}  router {found['status']}")
    typer.echo(f"  {found['link']}")
    if not found["reactions"]:
        typer.echo("no reactions")
        return
    rows = [
        [r["reaction"], r["outcome"] or "-", _now_column(r), r["alert"] or "", r["link"] or "-"]
        for r in found["reactions"]
    ]
    typer.echo("")
    typer.echo(_table(["reaction", "outcome", "latest run", "alert", "temporal"], rows))
    details = [r for r in found["reactions"] if r["detail"]]
    for row in details:
        typer.echo(f"  {row['reaction']}: {_one_line(row['detail'], 1000)}")
        if row["now"]:
            typer.echo(f"    now: {row['now']}")
    if any(r["replayed"] for r in found["reactions"]):
        typer.echo("(outcome is the router's; a replayed reaction's latest run is newer)")


# --- failed ------------------------------------------------------------------------------


async def _root_message(client: Client, failure: Failure) -> str:
    """The message our code raised, not those of the wrappers around it (decrypted:
    failure messages are encoded by the payload codec)."""
    from temporalio.exceptions import ApplicationError

    error: BaseException | None = await client.data_converter.decode_failure(failure)
    while error is not None and not isinstance(error, ApplicationError) and error.__cause__:
        error = error.__cause__
    return str(error.message) if isinstance(error, ApplicationError) else str(error or "")


async def _failure_message(client: Client, workflow_id: str, run_id: str | None) -> str:
    from temporalio.client import WorkflowHistoryEventFilterType

    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(
        event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
    ):
        if event.HasField("workflow_execution_failed_event_attributes"):
            return await _root_message(
                client, event.workflow_execution_failed_event_attributes.failure
            )
    return ""


async def find_failed(
    client: Client, settings: Settings, since: datetime, topic: str | None, limit: int
) -> list[dict[str, Any]]:
    """Reactions (and routers, as reaction ``(router)``) whose latest run failed and
    closed after ``since``, newest first.

    From the visibility store; a reaction replayed since (its latest run is another
    one, not failed) is left out, and of several failed runs only the newest counts.
    """
    from temporalio.client import WorkflowExecutionStatus

    from core.links import workflow_url
    from core.temporal import TOPIC
    from workflows.router import ROUTER_WORKFLOW

    newest: dict[str, WorkflowExecution] = {}
    async for execution in client.list_workflows(failed_query(since, topic), limit=limit):
        if "/" not in execution.id and execution.workflow_type != ROUTER_WORKFLOW:
            continue  # neither a reaction (`<event id>/<reaction>`) nor a router
        seen = newest.get(execution.id)
        if seen is None or (execution.close_time or since) > (seen.close_time or since):
            newest[execution.id] = execution
    gate = asyncio.Semaphore(8)

    async def row(execution: WorkflowExecution) -> dict[str, Any] | None:
        async with gate:
            latest = await _describe(client, execution.id)
            if latest is not None and latest.run_id != execution.run_id:
                if latest.status != WorkflowExecutionStatus.FAILED:
                    return None  # replayed (or running again) since
            message = await _failure_message(client, execution.id, execution.run_id)
        if "/" in execution.id:
            event_id, reaction = execution.id.split("/", 1)
        else:
            event_id, reaction = execution.id, ROUTER_ROW
        return {
            "event_id": event_id,
            "reaction": reaction,
            "topic": execution.typed_search_attributes.get(TOPIC),
            "closed": execution.close_time,
            "error": message,
            "workflow_id": execution.id,
            "run_id": execution.run_id,
            "workflow_type": execution.workflow_type,
            "link": workflow_url(
                settings.temporal_ui_url, settings.temporal_namespace, execution.id
            ),
        }

    rows = [r for r in await asyncio.gather(*(row(e) for e in newest.values())) if r]
    return sorted(rows, key=lambda r: r["closed"] or since, reverse=True)


@app.command()
def failed(
    since: SinceOption = "24h",
    topic: TopicOption = None,
    limit: LimitOption = 200,
    as_json: JsonOption = False,
) -> None:
    """List reactions (and routers) that failed for good, newest first, with links to
    the Temporal UI. A router that failed shows as reaction `(router)`."""
    from core.links import list_url

    settings = _load("failed")
    try:
        start = parse_since(since)
        query = failed_query(start, topic)
    except CommandError as err:
        _fail("failed", str(err), err.status)

    async def work() -> list[dict[str, Any]]:
        return await find_failed(await _connect(settings), settings, start, topic, limit)

    rows = _run("failed", work())
    link = list_url(settings.temporal_ui_url, settings.temporal_namespace, query)
    if as_json:
        _echo_json({"since": start, "query": query, "link": link, "failed": rows})
        return
    if rows:
        table = [
            [
                r["event_id"],
                r["reaction"],
                r["topic"] or "",
                _time(r["closed"]),
                _short(r["error"]),
                r["link"],
            ]
            for r in rows
        ]
        typer.echo(_table(["event", "reaction", "topic", "closed", "error", "temporal"], table))
        typer.echo(f"\n{len(rows)} failed reaction(s) since {_time(start)}")
    else:
        typer.echo(f"no reaction failed since {_time(start)}")
    typer.echo(f"in the Temporal UI: {link}")
