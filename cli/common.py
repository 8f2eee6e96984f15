"""What every `reactor` command shares: the Typer app, settings, output, Temporal access.

Exit codes: 0 done; 1 the answer was "no"; 2 the API or Temporal could not be reached,
or the command was given something unusable.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from temporalio.client import (
        Client,
        WorkflowExecutionDescription,
    )

    from core.events import LikeMagicEvent


T = TypeVar("T")

app = typer.Typer(
    help="reactor: LIKE MAGIC webhook events in, durable reactions on Temporal out.",
    no_args_is_help=True,
    add_completion=False,
)


# --- operating on events: send, status, failed, replay ------------------------------------
#
# These talk to a running API or to Temporal; each prints a table, or JSON with --json.
# Exit codes: 0 done; 1 the answer was "no" (an error answer, an unknown event, a reaction
# that failed again); 2 the API or Temporal could not be reached, or the command was
# given something unusable.

DEFAULT_SAMPLE = "reservation_checked_in.json"
DEFAULT_API_URL = "http://127.0.0.1:8000"
# Bounds the whole connect, beyond FAST_FAIL_RETRY's own retries (about 2.5 s).
CONNECT_TIMEOUT_SECONDS = 8.0
# Replays that run at once with --all-failed.
REPLAY_CONCURRENCY = 4
DETAIL_WIDTH = 72
# The reaction column of a router that failed (its event could not be routed at all).
ROUTER_ROW = "(router)"
SAFE_VALUE = re.compile(r"[A-Za-z0-9._:@ -]+")
DURATION = re.compile(r"(\d+)([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


class CommandError(Exception):
    """A one-line error for the user, with the exit status it means."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _fail(command: str, message: str, status: int) -> NoReturn:
    typer.echo(f"reactor {command}: {message}", err=True)
    raise typer.Exit(status)


def stack_settings() -> dict[str, str]:
    """What a running `reactor dev` recorded (core/stack.py), where the environment does
    not say otherwise: so commands follow the dev stack's ports without exports."""
    from core.stack import running_stack

    stack = running_stack()
    if stack is None:
        return {}
    return {name: value for name, value in stack.settings().items() if name not in os.environ}


def api_url(given: str | None) -> str:
    """--url or REACTOR_API_URL, else the running dev stack's API, else the default."""
    from core.stack import running_stack

    if given:
        return given
    stack = running_stack()
    return stack.api_url if stack else DEFAULT_API_URL


def _load(command: str) -> Settings:
    try:
        return load_settings(**stack_settings())
    except ValueError as err:  # pydantic's ValidationError: a bad variable
        _fail(command, _one_line(str(err)), 2)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _short(text: str, width: int = DETAIL_WIDTH) -> str:
    return _one_line(text, width)


def _run(command: str, work: Coroutine[Any, Any, T]) -> T:
    """Run one command's async work; turn unreachable Temporal and refusals into one line."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return asyncio.run(work)
    except CommandError as err:
        _fail(command, str(err), err.status)
    except RPCError as err:
        gone = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}
        status = 2 if err.status in gone else 1
        _fail(command, f"Temporal answered {err.status.name}: {_one_line(err.message)}", status)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns aligned with spaces. Plain text: links stay whole and clickable at any width."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=_json_value, ensure_ascii=False))


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


def _checked(value: str, what: str) -> str:
    """A value safe to put between quotes in a visibility query."""
    if not SAFE_VALUE.fullmatch(value):
        raise CommandError(f"{what} {value!r} holds characters no event uses", 2)
    return value


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`24h`, `30m`, `7d`, `1h30m`, or an ISO instant, as a UTC datetime."""
    now = now or datetime.now(UTC)
    compact = text.strip().lower()
    parts = DURATION.findall(compact)
    if parts and "".join(n + u for n, u in parts) == compact:
        return now - timedelta(seconds=sum(int(n) * UNITS[u] for n, u in parts))
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            f"--since {text!r}: give a duration (24h, 30m, 7d) or an ISO time", 2
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def failed_query(since: datetime, topic: str | None = None) -> str:
    """The visibility query of failed workflows: reactions, routers and the others."""
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f'ExecutionStatus = "Failed" AND CloseTime > "{stamp}"'

    if topic:
        query += f' AND Topic = "{_checked(topic, "topic")}"'
    return query


def reactions_query(event_id: str) -> str:
    return f'WorkflowId STARTS_WITH "{_checked(event_id, "event id")}/"'


# --- Temporal access -----------------------------------------------------------------------


def _connect_reason(err: BaseException) -> str:
    """The gist of a connect error (the SDK's are long nested Rust error chains)."""
    text = str(err)
    quoted: list[str] = re.findall(r'message: "([^"]+)"', text)
    if quoted:
        return quoted[-1]
    return _one_line(text, 200) or f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s"


async def _connect(settings: Settings) -> Client:
    from core.temporal import FAST_FAIL_RETRY, connect

    try:
        return await asyncio.wait_for(
            connect(settings, retry_config=FAST_FAIL_RETRY), CONNECT_TIMEOUT_SECONDS
        )
    except ValueError as err:  # no usable encryption key
        raise CommandError(str(err), 2) from None
    except (RuntimeError, TimeoutError, OSError) as err:
        reason = _connect_reason(err)
        raise CommandError(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {reason}",
            2,
        ) from None


async def _describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The latest run of a workflow ID, or None when there is none."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def _router(
    client: Client, settings: Settings, event_id: str
) -> WorkflowExecutionDescription:
    from core.events import EVENT_ID_PATTERN

    if not EVENT_ID_PATTERN.fullmatch(event_id):
        raise CommandError(f"{event_id!r} is not an event id", 2)
    described = await _describe(client, event_id)
    if described is None:
        raise CommandError(
            f"no event {event_id} in namespace {settings.temporal_namespace}: never received, "
            f"or closed longer ago than the retention "
            f"({settings.namespace_retention_days} days by REACTOR_NAMESPACE_RETENTION_DAYS)"
        )
    if described.workflow_type != "EventRouter":
        raise CommandError(f"{event_id} is a {described.workflow_type} execution, not an event")
    return described


async def _read_event(client: Client, event_id: str) -> LikeMagicEvent:
    """The event as the webhook handed it to the router (its first history event)."""
    from core.temporal import received_event

    event = await received_event(client, event_id)
    if event is None:
        raise CommandError(f"the history of {event_id} does not start with its event")
    return event


async def _closed_event(client: Client, settings: Settings, event_id: str) -> LikeMagicEvent:
    """The event of a router that has closed. While the router runs, its reactions are
    its to start: a replay could take a reaction's workflow ID from under it."""
    from temporalio.client import WorkflowExecutionStatus

    router = await _router(client, settings, event_id)
    if router.status == WorkflowExecutionStatus.RUNNING:
        raise CommandError(f"the router of {event_id} is still running: replay once it closed")
    return await _read_event(client, event_id)


async def _reaction_names(client: Client, event_id: str, topic: str | None) -> list[str]:
    """Reactions of an event: those registered for its topic, and any execution
    `<event id>/<name>` the visibility store knows (a reaction since removed, say)."""
    from workflows.registry import reactions_for

    names = [r.name for r in reactions_for(topic)] if topic else []
    async for execution in client.list_workflows(reactions_query(event_id)):
        name = execution.id.split("/", 1)[1]
        if name not in names:
            names.append(name)
    return names


def _execution(
    described: WorkflowExecutionDescription | None, settings: Settings, workflow_id: str
) -> dict[str, Any]:
    from core.links import workflow_url

    link = workflow_url(settings.temporal_ui_url, settings.temporal_namespace, workflow_id)
    if described is None:
        # Skipped without being started (switched off, not configured): nothing to open.
        return {"execution": None, "run_id": None, "replayed": False, "link": None}
    return {
        "execution": described.status.name if described.status else None,
        "run_id": described.run_id,
        # The router starts reactions as its children; `reactor replay` starts them alone.
        "replayed": described.parent_id is None,
        "closed": described.close_time,
        "link": link,
    }


SinceOption = Annotated[str, typer.Option(help="How far back: 24h, 30m, 7d, or an ISO time.")]
TopicOption = Annotated[str | None, typer.Option(help="Only events of this topic.")]
LimitOption = Annotated[int, typer.Option(help="At most this many failed executions.", min=1)]
