"""The intake queue: events the webhook acknowledged while Temporal could not take them.

``add`` is group-committed: requests arriving while a commit is on its way are written
together by the next one, so the SQLite queue takes thousands of events per second with
one fsync per group, and every caller learns only once its row is on disk. ``claim``
leases the oldest rows whose object has no older row waiting, so events of one object
leave in the order they came, and several forwarders (API replicas on one PostgreSQL)
never take the same row (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload

from core.codec import DecryptionError, EncryptionCodec
from storage.schema import intake_events as T

# Rows written by one commit at most.
GROUP_LIMIT = 512


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Waiting:
    """One queued event, as `reactor intake` and the forwarder see it."""

    event_id: str
    topic: str
    object_key: str | None
    received: datetime
    reason: str
    attempts: int
    last_error: str | None
    payload: str

    @classmethod
    def of(cls, row: Any) -> Waiting:
        return cls(
            event_id=row.event_id,
            topic=row.topic,
            object_key=row.object_key,
            received=datetime.fromtimestamp(row.received_us / 1e6, UTC),
            reason=row.reason,
            attempts=row.attempts,
            last_error=row.last_error,
            payload=row.payload,
        )


@dataclass(frozen=True)
class Stats:
    depth: int
    oldest: datetime | None

    def oldest_age_seconds(self, now: datetime | None = None) -> float:
        if self.oldest is None:
            return 0.0
        return max(0.0, ((now or datetime.now(UTC)) - self.oldest).total_seconds())


@dataclass
class _Pending:
    row: dict[str, Any]
    done: asyncio.Future[bool]


# A queued event's payload as stored when the queue has keys: this prefix, then the
# base64 of an encrypted Temporal payload (core/codec.py, the same keys as Temporal's).
SEALED = "enc1:"


class IntakeQueue:
    """The intake queue. With ``codec``, each event is stored encrypted (AES-256-GCM, the
    payload codec's keys): guest data in the queue is no more readable than in Temporal."""

    def __init__(self, engine: AsyncEngine, codec: EncryptionCodec | None = None) -> None:
        self.engine = engine
        self._codec = codec
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._insert = self._insert_statement().returning(T.c.event_id)

    # --- writing (the webhook) ----------------------------------------------------------

    async def add(
        self, event_id: str, topic: str, object_key: str | None, payload: str, reason: str
    ) -> bool:
        """Store the event durably: True once written, False when its id already waits.
        Raises when the store cannot write it (the caller must not acknowledge it)."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="intake-writer")
        row = {
            "event_id": event_id,
            "topic": topic,
            "object_key": object_key,
            "received_us": now_us(),
            "reason": reason,
            "payload": self._seal(payload),
            "attempts": 0,
            "last_error": None,
            "leased_until_us": 0,
        }
        pending = _Pending(row, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        self._wake.set()
        return await asyncio.shield(pending.done)

    async def _write_groups(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                group, self._pending = self._pending[:GROUP_LIMIT], self._pending[GROUP_LIMIT:]
                try:
                    written = await self._insert_rows([p.row for p in group])
                except Exception as err:  # noqa: BLE001 - every waiting caller hears of it
                    for p in group:
                        if not p.done.done():
                            p.done.set_exception(err)
                    continue
                for p in group:
                    if not p.done.done():
                        new = p.row["event_id"] in written
                        written.discard(p.row["event_id"])  # a second copy in the group
                        p.done.set_result(new)

    def _insert_statement(self) -> Any:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(T).on_conflict_do_nothing(index_elements=[T.c.event_id])
        return sqlite.insert(T).on_conflict_do_nothing(index_elements=[T.c.event_id])

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> set[str]:
        # One statement compiled once (SQLAlchemy caches it) for a list of parameter sets:
        # SQLAlchemy's "insertmanyvalues" sends them as batched multi-row INSERTs that
        # return the ids inserted. (``.values(rows)`` compiled anew for every group.)
        async with self.engine.begin() as conn:
            result = await conn.execute(self._insert, rows)
            return {r[0] for r in result}

    async def close(self) -> None:
        if self._writer is not None:
            # Callers still waiting hear the outcome of their write before the writer stops.
            waiting = [p.done for p in self._pending]
            await asyncio.gather(*waiting, return_exceptions=True)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    # --- draining (the forwarder) -------------------------------------------------------

    async def claim(self, limit: int, lease_seconds: float) -> list[Waiting]:
        """Lease up to ``limit`` of the oldest free rows, one per object at most, and only
        an object's oldest row: the next one waits until that one has left."""
        now = now_us()
        older = T.alias("older")
        earlier = or_(
            older.c.received_us < T.c.received_us,
            and_(older.c.received_us == T.c.received_us, older.c.event_id < T.c.event_id),
        )
        chosen = (
            select(T.c.event_id)
            .where(T.c.leased_until_us < now)
            .where(
                or_(
                    T.c.object_key.is_(None),
                    ~exists().where(older.c.object_key == T.c.object_key, earlier),
                )
            )
            .order_by(T.c.received_us, T.c.event_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(T)
                .where(T.c.event_id.in_(chosen.scalar_subquery()))
                .values(leased_until_us=now + int(lease_seconds * 1e6))
                .returning(*T.c)
            )
            rows = [self._opened(Waiting.of(r)) for r in result]
        return sorted(rows, key=lambda w: (w.received, w.event_id))

    def _seal(self, payload: str) -> str:
        if self._codec is None:
            return payload
        sealed = self._codec.encrypt(
            Payload(metadata={"encoding": b"json/plain"}, data=payload.encode())
        )
        return SEALED + base64.b64encode(sealed.SerializeToString()).decode()

    def _opened(self, row: Waiting) -> Waiting:
        """The row with its event readable (stored in the clear before keys were set, or
        sealed: then the codec's keys must include the one it was sealed with)."""
        if not row.payload.startswith(SEALED):
            return row
        if self._codec is None:
            raise DecryptionError(
                f"queued event {row.event_id} is encrypted: set REACTOR_ENCRYPTION_KEYS"
            )
        stored = Payload.FromString(base64.b64decode(row.payload.removeprefix(SEALED)))
        plain = self._codec.decrypt(stored).data.decode()
        return dataclasses.replace(row, payload=plain)

    async def remove(self, event_ids: list[str]) -> None:
        if event_ids:
            async with self.engine.begin() as conn:
                await conn.execute(delete(T).where(T.c.event_id.in_(event_ids)))

    async def release(
        self, event_ids: list[str], error: str | None = None, retry_after: float = 0.0
    ) -> None:
        """Free leased rows (after ``retry_after`` seconds); with ``error``, count a failed
        attempt and keep why, for `reactor intake`."""
        if not event_ids:
            return
        values: dict[str, Any] = {"leased_until_us": now_us() + int(retry_after * 1e6)}
        if error is not None:
            values.update(attempts=T.c.attempts + 1, last_error=error[:1000])
        async with self.engine.begin() as conn:
            await conn.execute(update(T).where(T.c.event_id.in_(event_ids)).values(**values))

    # --- reading (metrics, readiness, the CLI) ------------------------------------------

    async def stats(self) -> Stats:
        async with self.engine.connect() as conn:
            depth, oldest = (
                await conn.execute(select(func.count(), func.min(T.c.received_us)))
            ).one()
        return Stats(
            int(depth), datetime.fromtimestamp(oldest / 1e6, UTC) if oldest is not None else None
        )

    async def waiting(self, limit: int = 100) -> list[Waiting]:
        """The oldest waiting events, oldest first."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(T).order_by(T.c.received_us, T.c.event_id).limit(limit)
            )
            return [Waiting.of(r) for r in result]

    async def get(self, event_id: str) -> Waiting | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(T).where(T.c.event_id == event_id))).first()
        return Waiting.of(row) if row is not None else None

    async def holds_object(self, object_key: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.execute(select(T.c.event_id).where(T.c.object_key == object_key))
            return found.first() is not None
