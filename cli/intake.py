"""`reactor intake`: the events the webhook acknowledged that wait for Temporal, and why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import JsonOption, _echo_json, _fail, _load, _one_line, _run, _table, _time, app
from core.settings import Settings

if TYPE_CHECKING:
    from storage.intake import Stats, Waiting

WHY = {
    "temporal_down": "Temporal was known to be down when it came",
    "temporal_unavailable": "Temporal was unreachable when it came",
    "temporal_slow": "Temporal did not answer within INTAKE_START_BUDGET_SECONDS",
    "temporal_refused": "Temporal refused it",
    "behind_object": "an older event of the same object was waiting",
}


def why(waiting: Waiting) -> str:
    text = WHY.get(waiting.reason, waiting.reason)
    if waiting.last_error:
        text += f"; last try ({waiting.attempts}): {waiting.last_error}"
    return text


def row(waiting: Waiting, now: datetime) -> dict[str, Any]:
    return {
        "event_id": waiting.event_id,
        "topic": waiting.topic,
        "object": waiting.object_key,
        "received": waiting.received,
        "waiting_seconds": round((now - waiting.received).total_seconds(), 1),
        "attempts": waiting.attempts,
        "reason": waiting.reason,
        "why": why(waiting),
    }


async def read_queue(
    settings: Settings, event_id: str | None = None, limit: int = 100
) -> tuple[Stats, list[Waiting]] | None:
    """The queue's stats and its oldest rows (or the one row of ``event_id``); None when
    there is no queue yet (no SQLite file: nothing was ever queued here)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from storage.db import open_engine
    from storage.intake import IntakeQueue

    url = make_url(settings.intake_database_url)
    sqlite_file = Path(url.database or "") if url.get_backend_name() == "sqlite" else None
    if sqlite_file is not None and not await asyncio.to_thread(sqlite_file.is_file):
        return None
    engine = await open_engine(settings.intake_database_url, migrate_schema=False)
    try:
        queue = IntakeQueue(engine)
        if event_id is not None:
            found = await queue.get(event_id)
            return (await queue.stats(), [found] if found else [])
        return await queue.stats(), await queue.waiting(limit)
    except (OperationalError, ProgrammingError) as err:
        if "intake_events" in str(err):
            return None  # the API never ran against this store: no table yet
        raise
    finally:
        await engine.dispose()


async def queued_event(settings: Settings, event_id: str) -> dict[str, Any] | None:
    """The event as it waits in the queue, for `reactor status`; None when it does not."""
    found = await read_queue(settings, event_id)
    if not found or not found[1]:
        return None
    return row(found[1][0], datetime.now(UTC))


@app.command()
def intake(
    limit: Annotated[int, typer.Option(help="List at most this many, oldest first.", min=1)] = 100,
    as_json: JsonOption = False,
) -> None:
    """List the events that wait in the intake queue for Temporal, oldest first, and why."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import describe

    settings = _load("intake")
    try:
        found = _run("intake", read_queue(settings, limit=limit))
    except (SQLAlchemyError, OSError) as err:
        _fail(
            "intake",
            f"cannot read the queue at {describe(settings.intake_database_url)}: "
            f"{_one_line(str(err), 200)}",
            2,
        )
    now = datetime.now(UTC)
    rows = [row(w, now) for w in found[1]] if found else []
    depth = found[0].depth if found else 0
    if as_json:
        _echo_json({"depth": depth, "waiting": rows})
        return
    if not depth:
        typer.echo("the intake queue is empty: every event acknowledged is held by Temporal")
        return
    oldest = found[0].oldest_age_seconds(now) if found else 0.0
    typer.echo(f"{depth} event(s) waiting for Temporal, the oldest for {oldest:.0f} s")
    typer.echo("")
    table = [
        [r["event_id"], r["topic"], r["object"] or "-", _time(r["received"]), str(r["attempts"])]
        for r in rows
    ]
    typer.echo(_table(["event", "topic", "object", "received", "tries"], table))
    for r in rows:
        typer.echo(f"  {r['event_id']}: {_one_line(r['why'], 300)}")
