"""The effects ledger: a send to a provider that takes no idempotency key happens once.

SendGrid, Slack and Teams cannot tell a retry from a new request. Before such a call the
effect's key (``<workflow id>/<step>``) is recorded as ``started``; once the provider
answers, as ``done`` with the provider's reference (a message id). A retry that finds
``done`` gets the recorded reference back and does not call the provider again. A retry
that finds only ``started`` cannot know whether the provider got the first request, and
sends again: a crash between the provider's answer and the ``done`` record can still
duplicate (README, "Effects happen once").

The ledger holds keys and provider references only, never guest data. The worker builds
one per process; its engine opens (and migrates the store) on first use, so a store that
is down fails the attempt (retried by Temporal), never the worker's start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from storage.db import open_engine
from storage.intake import now_us
from storage.schema import effects as T

log = logging.getLogger("reactor.effects")

# Tries of the ``done`` record before the attempt fails (and its retry sends again).
DONE_TRIES = 5
DONE_PAUSE_SECONDS = 0.2


class LedgerUnavailable(Exception):
    """The store did not answer; the attempt fails (retryably) before anything is sent,
    or after the provider answered (then its retry sends again)."""


@dataclass(frozen=True)
class Effect:
    """What the provider answered (``reference``), and whether an earlier attempt had
    already been answered (``recorded``: this one did not call the provider)."""

    reference: str
    recorded: bool


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class EffectsLedger:
    """The ledger in reactor's store at ``url`` (INTAKE_DATABASE_URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        self._opening: asyncio.Lock | None = None

    async def engine(self) -> AsyncEngine:
        """The engine, opened and the schema migrated on first use (again after a failure)."""
        if self._engine is not None:
            return self._engine
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._engine is None:
                # SQLite: no pooled connections, so a ledger nobody closes (a worker
                # embedded in a test) leaves no connection thread behind.
                sqlite_file = make_url(self.url).get_backend_name() == "sqlite"
                options: dict[str, Any] = {"poolclass": NullPool} if sqlite_file else {}
                self._engine = await open_engine(self.url, **options)
        return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def once(self, key: str, provider: str, send: Callable[[], Awaitable[str]]) -> Effect:
        """Call ``send`` (which returns the provider's reference) unless ``key`` is done;
        either way, the reference. Raises what ``send`` raises, leaving ``started``."""
        try:
            recorded = await self.start(key, provider)
        except Exception as err:
            raise LedgerUnavailable(f"effects ledger unavailable: {type(err).__name__}") from None
        if recorded is not None:
            log.info("effect already done: not sent again", extra={"provider": provider})
            return Effect(recorded, recorded=True)
        reference = await send()
        try:
            await self.finish(key, reference)
        except Exception as err:
            log.error("effect sent but not recorded: a retry sends it again")
            raise LedgerUnavailable(f"effects ledger unavailable: {type(err).__name__}") from None
        return Effect(reference, recorded=False)

    async def start(self, key: str, provider: str) -> str | None:
        """Record ``key`` as started (an attempt more if it was); its reference if done."""
        engine = await self.engine()
        digest = key_hash(key)
        row = {
            "key_hash": digest,
            "key": key,
            "provider": provider,
            "state": "started",
            "attempts": 1,
            "started_us": now_us(),
        }
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        async with engine.begin() as conn:
            done = await conn.execute(
                select(T.c.reference).where(T.c.key_hash == digest, T.c.state == "done")
            )
            found = done.first()
            if found is not None:
                return str(found.reference or "")
            await conn.execute(
                dialect.insert(T)
                .values(row)
                .on_conflict_do_update(
                    index_elements=[T.c.key_hash],
                    set_={"attempts": T.c.attempts + 1, "started_us": row["started_us"]},
                )
            )
        return None

    async def finish(self, key: str, reference: str) -> None:
        """Record ``key`` as done; tried a few times, since a lost record means a resend."""
        values = {"state": "done", "reference": reference[:400], "done_us": now_us()}
        for attempt in range(1, DONE_TRIES + 1):
            try:
                engine = await self.engine()
                async with engine.begin() as conn:
                    await conn.execute(
                        update(T).where(T.c.key_hash == key_hash(key)).values(**values)
                    )
                return
            except Exception:
                if attempt == DONE_TRIES:
                    raise
                await asyncio.sleep(DONE_PAUSE_SECONDS * attempt)

    async def state(self, key: str) -> tuple[str, str | None, int] | None:
        """(state, reference, attempts) of ``key``, None if never started."""
        engine = await self.engine()
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(T.c.state, T.c.reference, T.c.attempts).where(
                        T.c.key_hash == key_hash(key)
                    )
                )
            ).first()
        return (row.state, row.reference, row.attempts) if row is not None else None
