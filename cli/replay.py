"""`reactor replay`: run a failed reaction again, never touching the router."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.settings import Settings

if TYPE_CHECKING:
    from temporalio.client import (
        Client,
        WorkflowHandle,
    )

    from core.events import LikeMagicEvent


from cli.common import (
    REPLAY_CONCURRENCY,
    ROUTER_ROW,
    CommandError,
    JsonOption,
    LimitOption,
    SinceOption,
    TopicOption,
    _closed_event,
    _connect,
    _describe,
    _echo_json,
    _fail,
    _load,
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
from cli.status import find_failed

# --- replay ------------------------------------------------------------------------------


async def _replay_one(
    client: Client,
    settings: Settings,
    event: LikeMagicEvent,
    name: str,
    *,
    again: bool,
    wait: bool,
) -> dict[str, Any]:
    """Start a new run of one reaction with the event, as the router would have, but
    without the router: the router (workflow ID = event id) stays as it was, so a
    redelivery of the event is still a duplicate. ``again`` also re-runs a reaction
    whose last run completed."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from core.links import workflow_url
    from core.temporal import event_search_attributes
    from workflows.reaction import ReactionResult
    from workflows.registry import REACTIONS
    from workflows.router import reaction_workflow_id

    workflow_id = reaction_workflow_id(event.id, name)
    link = workflow_url(settings.temporal_ui_url, settings.temporal_namespace, workflow_id)
    previous = await _describe(client, workflow_id)
    row: dict[str, Any] = {
        "event_id": event.id,
        "reaction": name,
        "workflow_id": workflow_id,
        "previous": previous.status.name if previous and previous.status else None,
        "run_id": None,
        "result": None,
        "detail": "",
        "link": link,
    }
    registered = next((r for r in REACTIONS if r.name == name), None)
    if previous is not None:
        workflow_type = previous.workflow_type
    elif registered is not None:
        workflow_type = str(getattr(registered.workflow, "__temporal_workflow_definition").name)
    else:
        row.update(result="not replayed", detail=f"no reaction {name} (not in the registry)")
        return row
    # Only a failed run may be followed by default; --reaction may re-run a completed one.
    policy = (
        WorkflowIDReusePolicy.ALLOW_DUPLICATE
        if again
        else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    )
    try:
        handle = await client.start_workflow(
            workflow_type,
            event,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=policy,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=event_search_attributes(event),
            static_summary=f"replay of {name} for {event.topic} {event.object_id or ''}".strip(),
            result_type=ReactionResult,
        )
    except WorkflowAlreadyStartedError:
        why = (
            "it is running"
            if previous and previous.status and (previous.status.name == "RUNNING")
            else "its last run did not fail (name it with --reaction to run it again)"
        )
        row.update(result="not replayed", detail=why)
        return row
    result = await _awaited(handle, row, wait)
    if result is not None:
        row.update(result=result.status, detail=result.detail)
    return row


async def _awaited(handle: WorkflowHandle[Any, Any], row: dict[str, Any], wait: bool) -> Any:
    """The new run's result, or None with the row saying "started" or "failed"."""
    from temporalio.client import WorkflowFailureError

    from workflows.router import root_cause_message

    row["run_id"] = handle.result_run_id
    if not wait:
        row["result"] = "started"
        return None
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        row.update(result="failed", detail=root_cause_message(err.cause))
        return None


async def _replay_router(
    client: Client, settings: Settings, event_id: str, *, wait: bool
) -> dict[str, Any]:
    """Start a new run of a router whose last run failed (its event could not be
    decoded or routed), with the event exactly as the webhook handed it over: the
    payload is passed on untouched, so even an event this CLI cannot decode goes back."""
    from temporalio.common import RawValue, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    from core.links import workflow_url
    from workflows.reaction import RouterResult
    from workflows.router import ROUTER_WORKFLOW, router_memo

    previous = await _router(client, settings, event_id)
    row: dict[str, Any] = {
        "event_id": event_id,
        "reaction": ROUTER_ROW,
        "workflow_id": event_id,
        "previous": previous.status.name if previous.status else None,
        "run_id": None,
        "result": None,
        "detail": "",
        "link": workflow_url(settings.temporal_ui_url, settings.temporal_namespace, event_id),
    }
    handle = client.get_workflow_handle(event_id, run_id=previous.run_id)
    received = None
    async for first in handle.fetch_history_events(page_size=1):
        payloads = first.workflow_execution_started_event_attributes.input.payloads
        received = payloads[0] if payloads else None
        break
    if received is None:
        row.update(result="not replayed", detail="the router's history holds no event")
        return row
    # As stored it is encrypted (the payload codec); the new run encrypts it again.
    codec = client.data_converter.payload_codec
    if codec is not None:
        [received] = await codec.decode([received])
    new = await client.start_workflow(
        ROUTER_WORKFLOW,
        RawValue(received),
        memo=router_memo(),
        id=event_id,
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=previous.typed_search_attributes,
        static_summary="replay of the router",
        result_type=RouterResult,
    )
    result = await _awaited(new, row, wait)
    if result is not None:
        statuses = [r.status for r in result.reactions]
        row.update(
            result="failed" if "failed" in statuses else "done",
            detail=", ".join(f"{r.reaction} {r.status}" for r in result.reactions)
            or "no reactions",
        )
    return row


async def _selected(
    client: Client, event: LikeMagicEvent, reaction: str | None
) -> tuple[list[str], dict[str, str]]:
    """The reactions to replay: the one named, or each whose latest run failed."""
    from temporalio.client import WorkflowExecutionStatus

    if reaction is not None:
        return [reaction], {}
    chosen, others = [], {}
    for name in await _reaction_names(client, event.id, event.topic):
        described = await _describe(client, f"{event.id}/{name}")
        if described is not None and described.status == WorkflowExecutionStatus.FAILED:
            chosen.append(name)
        else:
            others[name] = described.status.name if described and described.status else "-"
    return chosen, others


class _Progress:
    """A rich progress bar on stderr, or a plain counter where rich is missing."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.done, self.quiet = total, 0, quiet
        self._bar: Any = None
        self._task: Any = None
        if quiet:
            return
        try:
            from rich.console import Console
            from rich.progress import Progress
        except ImportError:
            return
        self._bar = Progress(console=Console(stderr=True))
        self._task = self._bar.add_task("replaying", total=total)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        elif not self.quiet:
            typer.echo(f"replayed {self.done}/{self.total}", err=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


async def replay_failed(
    client: Client,
    settings: Settings,
    since: datetime,
    topic: str | None,
    limit: int,
    *,
    wait: bool,
    quiet: bool,
) -> list[dict[str, Any]]:
    """Replay every reaction that failed since ``since`` (a few at a time)."""
    from temporalio.service import RPCError

    rows = await find_failed(client, settings, since, topic, limit)
    events: dict[str, LikeMagicEvent] = {}
    gate = asyncio.Semaphore(REPLAY_CONCURRENCY)
    with _Progress(len(rows), quiet) as progress:

        async def one(row: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                try:
                    if row["reaction"] == ROUTER_ROW:
                        done = await _replay_router(client, settings, row["event_id"], wait=wait)
                        progress.advance()
                        return done
                    if row["event_id"] not in events:
                        events[row["event_id"]] = await _closed_event(
                            client, settings, row["event_id"]
                        )
                    event = events[row["event_id"]]
                except (CommandError, RPCError) as err:
                    done = {**row, "result": "not replayed", "detail": str(err)}
                else:
                    done = await _replay_one(
                        client, settings, event, row["reaction"], again=False, wait=wait
                    )
            progress.advance()
            return done

        return list(await asyncio.gather(*(one(r) for r in rows)))


def _summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    results = [r["result"] for r in rows]
    return {
        "replayed": sum(r != "not replayed" for r in results),
        "succeeded": sum(r in ("done", "skipped") for r in results),
        "failed_again": results.count("failed"),
        "started": results.count("started"),
        "not_replayed": results.count("not replayed"),
    }


@app.command()
def replay(
    event_id: Annotated[
        str | None, typer.Argument(help="The event whose reactions to run again.")
    ] = None,
    reaction: Annotated[
        str | None,
        typer.Option(help="Only this reaction, whatever its last run did (default: the failed)."),
    ] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Every reaction that failed within --since.")
    ] = False,
    since: SinceOption = "24h",
    topic: TopicOption = None,
    limit: LimitOption = 200,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start the runs; do not wait for their results.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run an event's failed reactions again (after a fix), without touching its router.

    A router that failed (its event could not be decoded or routed) is run again itself,
    with the event as it was received; it then starts the event's reactions.
    Each reaction gets a new run of its execution `<event id>/<reaction>` with the
    original event. The router's own result stays as it was, and a redelivery of the
    event is still answered `duplicate`. Exit status 1 when a reaction failed again.
    """
    settings = _load("replay")
    if (event_id is None) == (not all_failed):
        _fail("replay", "give an EVENT_ID, or --all-failed (not both)", 2)
    if all_failed and reaction:
        _fail("replay", "--reaction goes with an EVENT_ID, not with --all-failed", 2)
    try:
        start = parse_since(since)
        failed_query(start, topic)  # checks --topic
    except CommandError as err:
        _fail("replay", str(err), err.status)

    async def work() -> tuple[list[dict[str, Any]], dict[str, str]]:
        from temporalio.client import WorkflowExecutionStatus

        client = await _connect(settings)
        if event_id is None:
            rows = await replay_failed(
                client, settings, start, topic, limit, wait=not no_wait, quiet=as_json
            )
            return rows, {}
        router = await _router(client, settings, event_id)
        if router.status == WorkflowExecutionStatus.FAILED and reaction is None:
            return [await _replay_router(client, settings, event_id, wait=not no_wait)], {}
        event = await _closed_event(client, settings, event_id)
        names, others = await _selected(client, event, reaction)
        rows = []
        for name in names:
            rows.append(
                await _replay_one(
                    client, settings, event, name, again=reaction is not None, wait=not no_wait
                )
            )
        return rows, others

    rows, others = _run("replay", work())
    summary = _summary(rows)
    if as_json:
        _echo_json({"replays": rows, "summary": summary, "not_selected": others})
    elif not rows:
        target = f"event {event_id}" if event_id else f"since {_time(start)}"
        listed = ", ".join(f"{n} {s}" for n, s in others.items())
        typer.echo(
            f"nothing to replay for {target}: no failed reaction"
            + (f" ({listed})" if listed else "")
        )
    else:
        table = [
            [
                r["event_id"],
                r["reaction"],
                r["previous"] or "-",
                r["result"] or "",
                _short(r["detail"]),
                r["link"],
            ]
            for r in rows
        ]
        typer.echo(_table(["event", "reaction", "was", "now", "detail", "temporal"], table))
        typer.echo(
            f"\nreplayed {summary['replayed']}: {summary['succeeded']} succeeded, "
            f"{summary['failed_again']} failed again"
            + (f", {summary['started']} started" if summary["started"] else "")
            + (f"; {summary['not_replayed']} not replayed" if summary["not_replayed"] else "")
        )
        typer.echo("(the router's result stays as it was; `reactor status` shows the new runs)")
    if summary["failed_again"] or summary["not_replayed"]:
        raise typer.Exit(1)
