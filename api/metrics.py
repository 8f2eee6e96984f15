"""GET /metrics: the webhook's counters and acknowledgement latency, in Prometheus format.

Each app owns its registry (``app.state.metrics``), so several apps in one process,
as in the tests, count separately.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from core.events import Topic
from storage.intake import Stats

OUTCOMES = ("accepted", "duplicate", "queued", "unauthorized", "invalid", "unavailable", "error")
# Around the 3.5 s acknowledgement deadline, and the platform's 5 s limit.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.5, 4.5, 5.0)
KNOWN_TOPICS = frozenset(t.value for t in Topic)

router = APIRouter(tags=["operations"])


def topic_label(topic: str | None) -> str:
    """The topic as a label value: ``unknown`` when not read, ``other`` when not a
    documented topic, so a sender cannot grow the number of series at will."""
    if not topic:
        return "unknown"
    return topic if topic in KNOWN_TOPICS else "other"


class WebhookMetrics:
    """The webhook's series, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.events = Counter(
            "reactor_webhook_events",
            "Events the webhook answered, by topic and outcome.",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "reactor_webhook_ack_seconds",
            "Time from receiving an event to answering it, by outcome.",
            ["outcome"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        # Every outcome is a series from the start, so a rate over it is never missing.
        for outcome in OUTCOMES:
            self.ack_seconds.labels(outcome)

        self.intake_depth = Gauge(
            "reactor_intake_depth",
            "Events waiting in the intake queue for Temporal (all replicas).",
            registry=self.registry,
        )
        self.intake_oldest_age = Gauge(
            "reactor_intake_oldest_age_seconds",
            "Age of the oldest event waiting in the intake queue; 0 when it is empty.",
            registry=self.registry,
        )
        self.intake_forwarded = Counter(
            "reactor_intake_forwarded",
            "Queued events this replica handed to Temporal: started, or duplicate "
            "(Temporal already held it).",
            ["result"],
            registry=self.registry,
        )
        for result in ("started", "duplicate"):
            self.intake_forwarded.labels(result)
        self.breaker_open = Gauge(
            "reactor_intake_breaker_open",
            "1 while this replica knows Temporal to be down and queues without trying it.",
            registry=self.registry,
        )

    def set_intake(self, stats: Stats) -> None:
        self.intake_depth.set(stats.depth)
        self.intake_oldest_age.set(stats.oldest_age_seconds())

    def observe(self, topic: str | None, outcome: str, seconds: float) -> None:
        self.events.labels(topic_label(topic), outcome).inc()
        self.ack_seconds.labels(outcome).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@router.get(
    "/metrics",
    summary="Webhook metrics in the Prometheus text format",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    """Counters of events by topic and outcome, the acknowledgement latency, and the
    intake queue (depth, oldest age, forwarded)."""
    webhook_metrics: WebhookMetrics = request.app.state.metrics
    intake = request.app.state.intake
    if intake is not None:
        webhook_metrics.breaker_open.set(1 if intake.breaker.open else 0)
        try:
            webhook_metrics.set_intake(await asyncio.wait_for(intake.queue.stats(), 2.0))
        except Exception:  # noqa: BLE001, S110 - the store is down: keep the last values
            pass
    return Response(webhook_metrics.render(), media_type=CONTENT_TYPE_LATEST)
