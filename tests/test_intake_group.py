"""The intake queue's group commit, and `reactor api --workers N` sharing one SQLite queue.

A queued event is answered only once the commit that wrote it is done; a group whose
commit fails fails every caller in it, and none of its events is stored (the webhook
answers each of them 503). Real SQLite files throughout: the failures are SQLite's own
(a trigger that aborts the insert, another connection holding the write lock).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from api.app import create_app
from core.temporal import connect
from storage.db import open_engine
from storage.intake import IntakeQueue
from tests.conftest import sample
from tests.helpers import make_settings, unique
from tests.intake_support import (
    ApiProcess,
    DevServer,
    api_env,
    free_port,
    post,
    queue_depth,
    routers,
    until,
)

POISON = "poison-"


def refuse_poison(db: Path) -> None:
    """Make SQLite itself abort any insert of an event whose id starts with POISON."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON intake_events "
            f"WHEN NEW.event_id LIKE '{POISON}%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )


def stored_ids(db: Path) -> set[str]:
    """What another connection sees committed."""
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT event_id FROM intake_events")}


async def open_queue(tmp_path: Path) -> tuple[IntakeQueue, Path]:
    db = tmp_path / "intake.db"
    engine = await open_engine(f"sqlite+aiosqlite:///{db}")
    return IntakeQueue(engine), db


async def add(queue: IntakeQueue, event_id: str) -> bool:
    payload = json.dumps({"id": event_id, "topic": "TASK_CREATED"})
    return await queue.add(event_id, "TASK_CREATED", f"TASK:{event_id}", payload, "temporal_down")


async def test_concurrent_events_share_one_commit_and_each_is_answered_after_it(tmp_path):
    queue, db = await open_queue(tmp_path)
    commits = 0

    def counted(_: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(queue.engine.sync_engine, "commit", counted)
    # What another connection saw committed at the moment each caller got its answer.
    seen_at_answer: dict[str, bool] = {}

    async def add_and_look(event_id: str) -> bool:
        new = await add(queue, event_id)
        seen_at_answer[event_id] = event_id in stored_ids(db)
        return new

    ids = [f"evt-{i}" for i in range(40)]
    try:
        # A redelivery inside the same group is a duplicate, not a second row.
        answers = await asyncio.gather(*(add_and_look(i) for i in [*ids, ids[0]]))
        assert answers == [True] * len(ids) + [False]
        assert all(seen_at_answer.values()), "answered before its row was committed"
        assert commits == 1, f"{commits} commits for {len(ids)} events arriving together"
        # A later redelivery too.
        assert await add(queue, ids[1]) is False
        assert stored_ids(db) == set(ids)
    finally:
        await queue.close()
        await queue.engine.dispose()


async def test_a_failed_group_commit_fails_every_event_in_it_and_stores_none(tmp_path):
    queue, db = await open_queue(tmp_path)
    refuse_poison(db)
    try:
        group = [f"evt-{i}" for i in range(10)] + [f"{POISON}1"]
        answers = await asyncio.gather(*(add(queue, i) for i in group), return_exceptions=True)
        assert all(isinstance(a, Exception) for a in answers), answers
        assert stored_ids(db) == set()
        # The writer goes on: the next group is written.
        assert await add(queue, "evt-after") is True
        assert stored_ids(db) == {"evt-after"}
    finally:
        await queue.close()
        await queue.engine.dispose()


async def test_a_failed_group_commit_answers_503_to_every_request_in_it(tmp_path):
    """Requests that arrive while a commit waits are written by the next commit, together;
    when that one fails, each of them is answered 503 and none is stored."""
    settings = make_settings(tmp_path, TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    db = tmp_path / "intake.db"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reactor") as http:
            first, _ = await post(http, "", unique(sample("task_created")))
            assert first.json()["status"] == "queued"  # the breaker is open now
            refuse_poison(db)
            queue = app.state.intake.queue
            inserting = asyncio.Event()
            event.listen(
                queue.engine.sync_engine,
                "before_cursor_execute",
                lambda *a, **k: inserting.set() if "INSERT" in a[2] else None,
            )
            # Another connection holds the write lock: the next commit waits for it.
            blocker = sqlite3.connect(db, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                holder = unique(sample("task_created"))
                waiting = asyncio.create_task(post(http, "", holder))
                await asyncio.wait_for(inserting.wait(), 30)  # its insert waits for the lock
                group = [unique(sample("task_created")) for _ in range(6)]
                group.append({**unique(sample("task_created")), "id": f"{POISON}503"})
                answers = [asyncio.create_task(post(http, "", e)) for e in group]
                await until(lambda: _pending(queue, len(group)), "the group is gathered")
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            held, _ = await waiting
            assert held.json()["status"] == "queued"
            for response, _ in await asyncio.gather(*answers):
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "intake_unavailable"
    assert stored_ids(db) == {first.json()["eventId"], holder["id"]}


async def _pending(queue: IntakeQueue, count: int) -> bool:
    return len(queue._pending) == count


@pytest.mark.timeout(300)
async def test_two_api_processes_share_the_sqlite_queue(tmp_path):
    """`reactor api --workers 2`: with Temporal down both processes queue into one SQLite
    file (a redelivery is a duplicate whichever process takes it); once Temporal is up,
    their forwarders drain it, one router per event."""
    server = DevServer(tmp_path)
    settings = make_settings(tmp_path, TEMPORAL_ADDRESS=server.address)
    api = ApiProcess(api_env(settings), "--workers", "2")
    try:
        await api.start()
        assert api.process is not None
        pid = api.process.pid
        await until(lambda: _workers(pid, 2), "two worker processes")
        sent = [unique(sample("task_created")) for _ in range(40)]
        async with httpx.AsyncClient(timeout=10) as http:
            first = await asyncio.gather(*(post(http, api.url, e) for e in sent))
            again = await asyncio.gather(*(post(http, api.url, e) for e in sent))
        assert {r.json()["status"] for r, _ in first} == {"queued"}
        assert {(r.json()["status"], r.json().get("queued")) for r, _ in again} == {
            ("duplicate", True)
        }
        assert await queue_depth(settings.intake_database_url) == len(sent)

        await server.start()
        await until(lambda: _empty(settings.intake_database_url), "the queue drains", seconds=120)
        client = await connect(settings)
        counted = await routers(client, settings.task_queue, (e["id"] for e in sent))
        assert counted == {e["id"]: 1 for e in sent}
    finally:
        api.kill()
        server.stop()
    assert api.process is None


async def _workers(pid: int, count: int) -> bool:
    """``count`` uvicorn worker processes (spawned by multiprocessing) under ``pid``."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()  # noqa: ASYNC240
    spawned = 0
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes()  # noqa: ASYNC240 - /proc
        spawned += b"spawn_main" in command
    return spawned == count


async def _empty(url: str) -> bool:
    return await queue_depth(url) == 0
