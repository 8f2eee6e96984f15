"""Never a 5xx to the platform: while Temporal is down, slow or restarting the webhook
queues events durably and answers 200; the forwarder hands each to Temporal exactly once.
Only a queue that cannot store the event answers 503."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import cli
from api.app import create_app
from core.temporal import connect
from storage.db import open_engine
from storage.intake import IntakeQueue
from tests.conftest import sample
from tests.helpers import make_settings, unique
from tests.intake_support import (
    PUBLISHER_TIMEOUT,
    ApiProcess,
    DevServer,
    Postgres,
    api_env,
    free_port,
    post,
    queue_depth,
    routers,
    until,
)

SAMPLES = ("reservation_created", "reservation_checked_in", "task_created", "message_received")


def events(count: int) -> list[dict[str, Any]]:
    return [unique(sample(SAMPLES[i % len(SAMPLES)])) for i in range(count)]


def assert_held(response: httpx.Response, elapsed: float, *statuses: str) -> str:
    assert response.status_code == 200, response.text
    assert elapsed < PUBLISHER_TIMEOUT
    status = str(response.json()["status"])
    assert status in statuses, response.text
    return status


async def deliver(url: str, batch: list[dict[str, Any]], *statuses: str) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(*(post(http, url, e) for e in batch))
    return [assert_held(r, t, *statuses) for r, t in answers]


@asynccontextmanager
async def api_in_process(tmp_path: Path, address: str, **overrides: Any):
    """The API as `reactor api` builds it (it connects itself), inside the test process."""
    app = create_app(make_settings(tmp_path, TEMPORAL_ADDRESS=address, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reactor") as http:
            yield app, http


async def send(http: httpx.AsyncClient, event: dict[str, Any]) -> tuple[httpx.Response, float]:
    return await post(http, "", event)


# --- Temporal stopped, killed and restarted; the API killed mid-drain --------------------


@pytest.mark.timeout(300)
async def test_temporal_stopped_and_killed_then_the_api_killed_mid_drain_loses_nothing(
    tmp_path,
):
    server = DevServer(tmp_path)
    await server.start()
    settings = make_settings(tmp_path, TEMPORAL_ADDRESS=server.address)
    # One start at a time, so the drain lasts long enough to be interrupted.
    api = ApiProcess(api_env(settings, INTAKE_FORWARD_CONCURRENCY="1"))
    sent: list[dict[str, Any]] = []
    try:
        await api.start()
        first = events(4)
        assert set(await deliver(api.url, first, "accepted")) == {"accepted"}
        sent += first

        # A clean stop: events and redeliveries of queued and of accepted events arrive.
        server.stop(signal.SIGTERM)
        during_stop = events(20)
        await deliver(api.url, during_stop, "queued")
        assert set(await deliver(api.url, during_stop[:5] + first[:2], "duplicate", "queued"))
        sent += during_stop
        await server.start()
        await until(lambda: _empty(settings.intake_database_url), "the queue drains")

        # kill -9: the same, with more events and redeliveries at once.
        server.stop(signal.SIGKILL)
        during_kill = events(60)
        redeliveries = during_kill[:20] + during_stop[:10]
        answers = await deliver(api.url, during_kill + redeliveries, "queued", "duplicate")
        # Redeliveries of waiting events are duplicates; those of events Temporal already
        # holds cannot be told apart while it is down: queued again, forwarded as duplicates.
        assert answers.count("duplicate") == 20
        sent += during_kill
        waiting = len(during_kill) + 10
        assert await queue_depth(settings.intake_database_url) == waiting

        # Temporal back; the API killed -9 while it drains, and started again.
        await server.start()
        depth = await until(
            lambda: _draining(settings.intake_database_url, waiting),
            "the drain begins",
            seconds=120,
            pause=0.01,
        )
        api.kill()
        assert 0 < depth < waiting
        await api.start()
        await until(lambda: _empty(settings.intake_database_url), "the queue drains", seconds=120)

        client = await connect(settings)
        counted = await until(
            lambda: _all_routed(client, settings.task_queue, len(sent)), "every router listed"
        )
        assert set(counted) == {e["id"] for e in sent}
        assert set(counted.values()) == {1}
        again = await deliver(api.url, during_kill[:10] + during_stop[:5], "duplicate")
        assert set(again) == {"duplicate"}
    finally:
        api.kill()
        server.stop(signal.SIGKILL)


async def _empty(url: str) -> bool:
    return await queue_depth(url) == 0


async def _draining(url: str, total: int) -> int:
    depth = await queue_depth(url)
    return depth if 0 < depth < total else 0


async def _all_routed(client: Any, task_queue: str, count: int) -> Any:
    counted = await routers(client, task_queue)
    return counted if len(counted) >= count else None


# --- the breaker, status and intake commands ----------------------------------------------


async def test_with_nothing_listening_events_are_queued_and_shown(tmp_path, monkeypatch):
    address = f"127.0.0.1:{free_port()}"
    batch = events(3)
    async with api_in_process(tmp_path, address) as (app, http):
        first, _ = await send(http, batch[0])
        assert first.json() == {
            "status": "queued",
            "eventId": batch[0]["id"],
            "reason": "temporal_unavailable",
        }
        # The breaker is open now: the next ones go straight to the queue.
        assert app.state.intake.breaker.open
        for event in batch[1:]:
            response, _ = await send(http, event)
            assert response.json()["reason"] == "temporal_down"
        again, _ = await send(http, batch[0])
        assert again.json()["status"] == "duplicate" and again.json()["queued"] is True

        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["intake"]["depth"] == 3
        metrics = (await http.get("/metrics")).text
        assert "reactor_intake_depth 3.0" in metrics
        assert "reactor_intake_breaker_open 1.0" in metrics
        assert 'reactor_webhook_events_total{outcome="queued"' in metrics

    settings = make_settings(tmp_path, TEMPORAL_ADDRESS=address)
    # The queue holds the events encrypted (the payload codec's keys): no guest value is
    # readable in the database files (ids only: the object key orders the queue).
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("intake.db*") if p.is_file())
    assert stored, "the queue's database files"
    guest = batch[0]["context"]["primaryGuest"]  # the reservation_created sample
    for value in (guest["email"], guest["lastName"], guest["phone"]):
        assert value.encode() not in stored, value
    monkeypatch.setenv("INTAKE_DATABASE_URL", settings.intake_database_url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, cli.app, ["intake"])
    assert listed.exit_code == 0, listed.output
    assert "3 event(s) waiting for Temporal" in listed.output
    for event in batch:
        assert event["id"] in listed.output
    assert "Temporal was unreachable when it came" in listed.output
    # Guest data stays in the store.
    assert "primaryGuest" not in listed.output and "@" not in listed.output

    shown = await asyncio.to_thread(runner.invoke, cli.app, ["status", batch[1]["id"]])
    assert shown.exit_code == 0, shown.output
    assert "queued" in shown.output and batch[1]["id"] in shown.output


async def test_events_of_an_object_with_queued_events_wait_behind_them(temporal_env, tmp_path):
    """Temporal is up again, but an older event of the same reservation still waits: the
    new one queues behind it, and the forwarder starts them in the order received."""
    created = unique(sample("reservation_created"))
    checked_in = {**unique(sample("reservation_checked_in")), "objectId": created["objectId"]}
    settings = make_settings(tmp_path)
    engine = await open_engine(settings.intake_database_url)
    queue = IntakeQueue(engine)

    assert await queue.add(
        created["id"],
        created["topic"],
        f"RESERVATION:{created['objectId']}",
        json.dumps(created),
        "temporal_down",
    )
    await queue.close()
    await engine.dispose()

    app = create_app(settings, temporal_client=temporal_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reactor") as http:
            await until(lambda: _known_depth(app), "the forwarder has looked at the queue")
            response, _ = await send(http, checked_in)
            assert response.json()["status"] in ("queued", "accepted")
            await until(lambda: _empty(settings.intake_database_url), "the queue drains")
    first = await temporal_env.client.get_workflow_handle(created["id"]).describe()
    second = await temporal_env.client.get_workflow_handle(checked_in["id"]).describe()
    assert first.start_time <= second.start_time


async def _known_depth(app: Any) -> bool:
    return (
        app.state.intake.forwarder.last_depth > 0
        or (await app.state.intake.queue.stats()).depth == 0
    )


# --- an unwritable queue: 503, never a 200 for an event that is not stored ----------------


def immutable(paths: list[Path], on: bool) -> None:
    for path in paths:
        if path.exists():
            subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)


async def test_a_read_only_queue_file_with_temporal_down_answers_503(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    db = tmp_path / "intake.db"
    # Not the -shm file: SQLite maps it into memory, and a mapped page must stay writable.
    files = [db, Path(f"{db}-wal"), tmp_path]
    async with api_in_process(tmp_path, address) as (app, http):
        stored, _ = await send(http, unique(sample("task_created")))
        assert stored.json()["status"] == "queued"
        immutable(files, True)
        try:
            # New connections find the file read-only; the pool's are dropped.
            await app.state.intake.engine.dispose()
            lost = unique(sample("task_created"))
            refused, elapsed = await send(http, lost)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "intake_unavailable"
            assert int(refused.headers["Retry-After"]) > 0
            assert elapsed < PUBLISHER_TIMEOUT
        finally:
            immutable(files, False)
    assert await IntakeQueue(await open_engine(f"sqlite+aiosqlite:///{db}")).get(lost["id"]) is None


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def postgres():
    server = Postgres()
    server.init()
    try:
        yield server
    finally:
        server.remove()


async def test_two_replicas_share_a_postgres_queue_each_event_started_once(
    postgres, temporal_env, tmp_path
):
    settings = make_settings(tmp_path, INTAKE_DATABASE_URL=postgres.url)
    engine = await open_engine(postgres.url)
    queue = IntakeQueue(engine)

    batch = events(40)
    for event in batch:
        key = f"{event['objectType']}:{event['objectId'][:-9]}"  # a few shared objects
        assert await queue.add(event["id"], event["topic"], key, json.dumps(event), "temporal_down")
    assert not await queue.add(batch[0]["id"], "X", None, "{}", "temporal_down")
    await queue.close()
    await engine.dispose()

    apps = [create_app(settings, temporal_client=temporal_env.client) for _ in range(2)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        await until(lambda: _empty(postgres.url), "the queue drains")
        started = [a.state.metrics.intake_forwarded.labels("started")._value.get() for a in apps]
        duplicates = [
            a.state.metrics.intake_forwarded.labels("duplicate")._value.get() for a in apps
        ]
    assert sum(started) == len(batch)
    assert sum(duplicates) == 0
    counted = await routers(temporal_env.client, settings.task_queue, [e["id"] for e in batch])
    assert set(counted) == {e["id"] for e in batch} and set(counted.values()) == {1}


async def test_postgres_stopped_with_temporal_down_answers_503(postgres, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    async with api_in_process(tmp_path, address, INTAKE_DATABASE_URL=postgres.url) as (_, http):
        stored, _ = await send(http, unique(sample("task_created")))
        assert stored.json()["status"] == "queued"
        postgres.stop()
        refused, elapsed = await send(http, unique(sample("task_created")))
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "intake_unavailable"
        assert elapsed < PUBLISHER_TIMEOUT
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        postgres.start()
        back, _ = await send(http, unique(sample("task_created")))
        assert back.json()["status"] == "queued"
