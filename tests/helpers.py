"""A whole reactor in the test process: a worker on its own task queue and the API."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker

from api.app import create_app
from core.settings import Settings
from worker import build_worker
from workflows import registry
from workflows.reaction import ReactionOutcome, RouterResult

SECRET = "test-secret-0123456789abcdef"
HISTORIES = Path(__file__).resolve().parent / "histories"


async def record_history(name: str, handle: WorkflowHandle[Any, Any]) -> None:
    """With REACTOR_RECORD_HISTORIES=1, keep the workflow's history for tests/test_replay.py.

    A recorded history is never overwritten: it stands for executions that may still be
    running, which the current code must keep replaying. A new shape gets a new name.
    """
    path = HISTORIES / f"{name}.json"
    if os.environ.get("REACTOR_RECORD_HISTORIES") == "1" and not path.exists():
        HISTORIES.mkdir(exist_ok=True)
        path.write_text((await handle.fetch_history()).to_json())


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "WEBHOOK_SECRET": SECRET,
        "REACTOR_TASK_QUEUE": f"test-{uuid.uuid4()}",
        "EMAIL_OUTBOX_DIR": str(tmp / "outbox"),
        "EMAIL_FROM": "frontdesk@hotel.example",
        "INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'intake.db'}",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Reactor:
    client: Client
    settings: Settings
    http: httpx.AsyncClient

    async def post(self, event: Any, secret: str | None = SECRET, **headers: str) -> httpx.Response:
        if secret is not None:
            headers["lm-webhook-secret"] = secret
        if isinstance(event, bytes | str):
            return await self.http.post("/webhooks/likemagic", content=event, headers=headers)
        return await self.http.post("/webhooks/likemagic", json=event, headers=headers)

    def router(self, event_id: str) -> WorkflowHandle[Any, RouterResult]:
        return self.client.get_workflow_handle(event_id, result_type=RouterResult)

    async def routed(self, event_id: str) -> RouterResult:
        return await self.router(event_id).result()


def weeks_ahead() -> timedelta:
    """Whole weeks (so weekdays stay) that put the sample stay at least two weeks
    after today: its journey's messages must lie ahead, whenever the tests run."""
    first = datetime(2026, 12, 1, tzinfo=UTC)
    short = datetime.now(UTC) + timedelta(days=14) - first
    return timedelta(weeks=max(0, -(-short.days // 7)))


def shifted(event: dict, by: timedelta) -> dict:
    def move(value: str) -> str:
        return (datetime.fromisoformat(value) + by).isoformat().replace("+00:00", "Z")

    event = {**event, "timestamp": move(event["timestamp"]), "context": dict(event["context"])}
    for key in ("arrival", "departure"):
        if key in event["context"]:
            event["context"][key] = move(event["context"][key])
    return event


# How long a test waits for what the system does by itself (a workflow reaching a state,
# visibility catching up): a bound for a broken feature, far above what a slow, loaded CI
# machine needs. A passing test waits only until the thing holds.
WAIT_SECONDS = 60.0


# How long one query of a polling loop may take before the loop asks again.
QUERY_SECONDS = timedelta(seconds=5)


async def polls(seconds: float = WAIT_SECONDS, pause: float = 0.05) -> AsyncIterator[None]:
    """The rounds of a polling loop: one at once, then one every ``pause`` seconds, until
    ``seconds`` have passed (``async for _ in polls(): ...``, then fail after the loop)."""
    deadline = time.monotonic() + seconds
    while True:
        yield
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(pause)


async def until(check: Any, what: str, seconds: float = WAIT_SECONDS, pause: float = 0.1) -> Any:
    """Poll ``check`` (an async callable) until it returns something true; that value."""
    async for _ in polls(seconds, pause):
        found = await check()
        if found:
            return found
    raise AssertionError(f"never reached in {seconds:g} s: {what}")


async def query_until(
    handle: WorkflowHandle[Any, Any], result_type: type, check: Any, what: str
) -> Any:
    """Poll the workflow's ``state`` query until ``check`` holds (WAIT_SECONDS at most).

    Each query gets QUERY_SECONDS: on the time-skipping server, a query that races a
    continue-as-new is never answered, and would otherwise wait for the server's own
    30 s query deadline. The next query reaches the new run."""
    async for _ in polls():
        try:
            state = await handle.query("state", result_type=result_type, rpc_timeout=QUERY_SECONDS)
            if check(state):
                return state
        except Exception:  # noqa: BLE001 - not started yet
            pass
    last = await handle.query("state", result_type=result_type)
    raise AssertionError(f"never reached: {what}; last state: {last}")


async def skip_until(env: Any, at: datetime) -> None:
    """Skip the time-skipping server's clock to ``at``.

    The server refuses to skip while a task is outstanding. A workflow task handed to
    a worker that was shutting down (the restart tests) stays outstanding until its
    10 s timeout, and the sleep call times out meanwhile: then try again, from the
    clock as it is. A skip that does not end within WAIT_SECONDS fails with what
    holds it up, not with the transport error the hanging call ends in.
    """
    for attempt in range(4):
        now = await env.get_current_time()
        if at <= now:
            return
        try:
            await asyncio.wait_for(env.sleep(at - now), WAIT_SECONDS)
            return
        except TimeoutError:
            raise AssertionError(
                f"the test server did not skip to {at:%Y-%m-%d %H:%M} UTC in {WAIT_SECONDS:g} s: "
                "its clock runs at wall-clock pace while any task, or a query, is outstanding"
            ) from None
        except RPCError as err:
            if "Timeout expired" not in str(err) or attempt == 3:
                raise


def by_name(result: RouterResult) -> dict[str, ReactionOutcome]:
    return {outcome.reaction: outcome for outcome in result.reactions}


def unique(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The event with a fresh id (the dev server lives for the whole session).

    A task or reservation event also gets a fresh objectId: each task and each
    reservation has one long-running workflow, which tests must not share.
    """
    fresh = {**event, "id": str(uuid.uuid4())}
    if event.get("objectType") in ("TASK", "RESERVATION"):
        fresh["objectId"] = f"{event['objectId']}-{uuid.uuid4().hex[:8]}"
    return {**fresh, **changes}


def activity_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__temporal_activity_definition").name)


def worker_for(
    client: Client,
    settings: Settings,
    stand_ins: Sequence[Callable[..., Any]] = (),
    **options: Any,
) -> Worker:
    """The production worker, with test functions standing in for activities of the
    same name (for what a test server cannot do, such as visibility queries)."""
    replaced = {activity_name(f) for f in stand_ins}
    activities = [
        a for a in registry.build_activities(settings, client) if activity_name(a) not in replaced
    ]
    return build_worker(client, settings, activities=[*activities, *stand_ins], **options)


@asynccontextmanager
async def running_reactor(
    client: Client,
    tmp: Path,
    *,
    worker: bool = True,
    stand_ins: Sequence[Callable[..., Any]] = (),
    worker_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Reactor]:
    settings = make_settings(tmp, **overrides)
    app = create_app(settings, temporal_client=client)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://reactor") as http,
    ):
        if worker:
            async with worker_for(client, settings, stand_ins, **(worker_options or {})):
                yield Reactor(client, settings, http)
        else:
            yield Reactor(client, settings, http)
