"""The intake: starting a router, the breaker, and the forwarder that drains the queue.

The webhook and the forwarder start routers with the same options (``start_router``):
workflow ID = event id, REJECT_DUPLICATE, conflict FAIL. A row forwarded twice (a crash
between the start and the delete) is answered "already started" the second time, so each
event gets exactly one router.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.slack import SlackActivities, SlackMessage, mrkdwn
from core.codec import EncryptionCodec
from core.events import LikeMagicEvent
from core.logging import fields
from core.settings import Settings
from core.temporal import event_search_attributes
from storage.db import open_engine
from storage.intake import IntakeQueue, Stats, Waiting
from workflows.reaction import RouterResult
from workflows.router import ROUTER_WORKFLOW, router_memo

log = logging.getLogger("reactor.intake")

# Statuses that mean "Temporal is not there right now" rather than "Temporal said no".
UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.UNKNOWN,
}
# A claimed row is the forwarder's for this long; a forwarder killed mid-drain leaves its
# rows to the next one after it. Longer than one round of starts at the start budget.
LEASE_SECONDS = 10.0
# Backoff of the forwarder's probes while Temporal is down.
PROBE_FIRST_SECONDS = 0.5
PROBE_MAX_SECONDS = 15.0
# A row Temporal refused (not an outage) is tried again after this long.
REFUSED_RETRY_SECONDS = 30.0
# How often an idle forwarder looks for rows (other replicas' too) and refreshes its stats.
IDLE_POLL_SECONDS = 1.0


def object_key(event: LikeMagicEvent) -> str | None:
    return f"{event.object_type or ''}:{event.object_id}" if event.object_id else None


def is_unavailable(err: BaseException) -> bool:
    """Temporal is down or too slow, rather than refusing the event."""
    if isinstance(err, RPCError):
        return err.status in UNAVAILABLE
    # TimeoutError: no answer within the budget; RuntimeError: the lazy client cannot connect.
    return isinstance(err, TimeoutError | asyncio.CancelledError | RuntimeError)


async def start_router(
    client: Client, settings: Settings, event: LikeMagicEvent, budget: float
) -> WorkflowHandle[Any, Any]:
    """Start the event's router within ``budget`` seconds; raises WorkflowAlreadyStartedError
    for an event Temporal already holds."""
    return await asyncio.wait_for(
        client.start_workflow(
            ROUTER_WORKFLOW,
            event,
            memo=router_memo(),
            result_type=RouterResult,
            id=event.id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=event_search_attributes(event),
            static_summary=f"{event.topic} {event.object_id or ''}".strip()[:200],
            rpc_timeout=timedelta(seconds=budget),
        ),
        timeout=budget,
    )


class Breaker:
    """Open while Temporal is known to be down: the webhook queues at once instead of
    waiting out the budget on every request. The forwarder probes and closes it."""

    def __init__(self) -> None:
        self.opened_at: float | None = None
        self.reason = ""

    @property
    def open(self) -> bool:
        return self.opened_at is not None

    def trip(self, reason: str) -> None:
        if self.opened_at is None:
            self.opened_at = time.monotonic()
            log.warning("temporal unavailable: queueing events", extra=fields(reason=reason))
        self.reason = reason

    def close(self) -> None:
        if self.opened_at is not None:
            log.info("temporal is back: forwarding queued events")
        self.opened_at = None
        self.reason = ""


class Alerts:
    """One operations alert when the oldest waiting event passes INTAKE_ALERT_AFTER_SECONDS,
    one when the queue is empty again. The API runs no activities: it posts with the
    worker's Slack client (SLACK_WEBHOOK_URL), once, without Temporal's retries."""

    def __init__(self, settings: Settings) -> None:
        self.after = settings.intake_alert_after_seconds
        self.slack = SlackActivities(settings)
        self.raised = False

    async def observe(self, stats: Stats, breaker_reason: str) -> None:
        age = stats.oldest_age_seconds()
        if not self.raised and stats.depth and age >= self.after:
            self.raised = True
            why = mrkdwn(breaker_reason or "Temporal refuses or is slow")
            await self._post(
                f":warning: reactor intake: {stats.depth} event(s) waiting for Temporal, the "
                f"oldest for {age:.0f} s ({why}). `reactor intake` lists them."
            )
        elif self.raised and stats.depth == 0:
            self.raised = False
            await self._post(":white_check_mark: reactor intake: the queue is empty again.")

    async def _post(self, text: str) -> None:
        try:
            # Outside an activity: deliver() itself (post_slack reads the activity it runs in).
            delivery = await self.slack.deliver(SlackMessage(channel="operations", text=text))
            log.info("intake alert", extra=fields(delivery=delivery.status))
        except Exception as err:  # noqa: BLE001 - an alert must never stop the forwarder
            log.warning("intake alert not posted", extra=fields(error=type(err).__name__))


class Forwarder:
    """Drains the queue into Temporal as soon as it answers: oldest first, one event per
    object per round (so an object's events keep their order), up to
    INTAKE_FORWARD_CONCURRENCY starts at once. Runs in every API replica."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        queue: IntakeQueue,
        breaker: Breaker,
        metrics: Any,
    ) -> None:
        self.client = client
        self.settings = settings
        self.queue = queue
        self.breaker = breaker
        self.metrics = metrics
        self.alerts = Alerts(settings)
        self.wake = asyncio.Event()
        self._backoff = PROBE_FIRST_SECONDS
        self._task: asyncio.Task[None] | None = None
        # Events known to wait (this replica's last look, or its own last enqueue): while
        # 0, the webhook does not ask the store whether an event's object has some waiting.
        self.last_depth = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="intake-forwarder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - the store failed: try again later
                log.warning("intake forwarder", extra=fields(error=f"{type(err).__name__}"))
                await self._sleep(self._next_backoff())

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except TimeoutError:
            pass

    def _next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(PROBE_MAX_SECONDS, self._backoff * 2)
        return delay

    async def refresh(self) -> Stats:
        stats = await self.queue.stats()
        self.last_depth = stats.depth
        self.metrics.set_intake(stats)
        return stats

    async def _step(self) -> None:
        stats = await self.refresh()
        await self.alerts.observe(stats, self.breaker.reason)
        if self.breaker.open and not await self._probe():
            await self._sleep(self._next_backoff())
            return
        if not stats.depth:
            await self._sleep(IDLE_POLL_SECONDS)
            return
        rows = await self.queue.claim(self.settings.intake_forward_concurrency, LEASE_SECONDS)
        if not rows:
            await self._sleep(IDLE_POLL_SECONDS)  # leased by another replica, or a dead one
            return
        await self.forward(rows)

    async def _probe(self) -> bool:
        try:
            await asyncio.wait_for(
                self.client.service_client.check_health(
                    timeout=timedelta(seconds=self.settings.intake_start_budget_seconds)
                ),
                self.settings.intake_start_budget_seconds + 0.5,
            )
        except Exception:  # noqa: BLE001 - still down
            return False
        self.breaker.close()
        return True

    async def forward(self, rows: list[Waiting]) -> None:
        """Start the router of each row (they are of different objects) and delete those
        Temporal now holds; on an outage, hand the rest back and back off."""
        outcomes = await asyncio.gather(*(self._forward_one(row) for row in rows))
        held = [row.event_id for row, outcome in zip(rows, outcomes, strict=True) if outcome]
        await self.queue.remove(held)
        for outcome in outcomes:
            if outcome:
                self.metrics.intake_forwarded.labels(outcome).inc()
        unavailable = [r.event_id for r, o in zip(rows, outcomes, strict=True) if o is None]
        await self.queue.release(unavailable)
        if unavailable:
            await self._sleep(self._next_backoff())
        else:
            self._backoff = PROBE_FIRST_SECONDS

    async def _forward_one(self, row: Waiting) -> str | None:
        """``started`` or ``duplicate`` once Temporal holds it; None when Temporal is down;
        ``""`` when Temporal refused it (the row stays, with the error)."""
        try:
            event = LikeMagicEvent.model_validate_json(row.payload)
            await start_router(
                self.client, self.settings, event, self.settings.intake_start_budget_seconds
            )
        except WorkflowAlreadyStartedError:
            return "duplicate"
        except Exception as err:
            if is_unavailable(err):
                self.breaker.trip(f"{type(err).__name__} while forwarding")
                return None
            status = err.status.name if isinstance(err, RPCError) else type(err).__name__
            message = err.message if isinstance(err, RPCError) else str(err)
            log.error(
                "temporal refused a queued event",
                extra=fields(event_id=row.event_id, topic=row.topic, rpc_status=status),
            )
            await self.queue.release(
                [row.event_id], f"Temporal refused it ({status}): {message}", REFUSED_RETRY_SECONDS
            )
            return ""
        return "started"


class Intake:
    """What the API holds of the intake: the queue, the breaker and the forwarder."""

    def __init__(self, engine: AsyncEngine, forwarder: Forwarder) -> None:
        self.engine = engine
        self.forwarder = forwarder
        self.queue = forwarder.queue
        self.breaker = forwarder.breaker

    @classmethod
    async def open(cls, settings: Settings, client: Client, metrics: Any) -> Intake:
        engine = await open_engine(settings.intake_database_url)
        keys = settings.encryption_key_ring()
        queue = IntakeQueue(engine, EncryptionCodec(keys) if keys else None)
        forwarder = Forwarder(client, settings, queue, Breaker(), metrics)
        forwarder.start()
        return cls(engine, forwarder)

    async def close(self) -> None:
        await self.forwarder.stop()
        await self.queue.close()
        await self.engine.dispose()
