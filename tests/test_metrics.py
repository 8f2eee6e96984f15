"""GET /metrics of the API, and the worker's Temporal SDK metrics."""

from __future__ import annotations

import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.metrics import topic_label
from core.temporal import connect
from tests.conftest import sample
from tests.helpers import make_settings, running_reactor, unique, until
from worker import build_worker, metrics_runtime


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def events(page: dict, topic: str, outcome: str) -> float:
    labels = frozenset({("topic", topic), ("outcome", outcome)})
    return page.get(("reactor_webhook_events_total", labels), 0.0)


def acks(page: dict, outcome: str) -> float:
    return page[("reactor_webhook_ack_seconds_count", frozenset({("outcome", outcome)}))]


async def test_counters_and_histogram_move_as_events_arrive(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in"))
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        before = samples((await reactor.http.get("/metrics")).text)
        assert (await reactor.post(event)).json()["status"] == "accepted"
        assert (await reactor.post(event)).json()["status"] == "duplicate"
        assert (await reactor.post(event, secret="wrong-secret-0123456789")).status_code == 401
        assert (await reactor.post(b"{not json")).status_code == 400
        assert (await reactor.post({"id": "x1", "topic": 7})).status_code == 422
        newer = unique(event, topic="SOMETHING_NEWER")
        assert (await reactor.post(newer)).json()["status"] == "accepted"
        response = await reactor.http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    page = samples(response.text)
    # A fresh app counts from zero, but every outcome has a latency series from the start.
    assert not any(name == "reactor_webhook_events_total" for name, _ in before)
    assert acks(before, "unavailable") == 0
    assert events(page, "RESERVATION_CHECKED_IN", "accepted") == 1
    assert events(page, "RESERVATION_CHECKED_IN", "duplicate") == 1
    assert events(page, "unknown", "unauthorized") == 1
    assert events(page, "unknown", "invalid") == 2  # not JSON; no usable topic
    assert events(page, "other", "accepted") == 1  # not a documented topic: bounded labels
    assert acks(page, "accepted") == 2
    assert acks(page, "duplicate") == 1
    assert acks(page, "unauthorized") == 1
    assert acks(page, "invalid") == 2
    assert acks(page, "unavailable") == 0
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in page.items()
        if name == "reactor_webhook_ack_seconds_bucket" and ("outcome", "accepted") in labels
    }
    assert buckets["+Inf"] == 2 and buckets["3.5"] == 2


def test_each_app_has_its_own_registry(tmp_path):
    first = create_app(make_settings(tmp_path))
    second = create_app(make_settings(tmp_path))
    first.state.metrics.observe("TASK_CREATED", "accepted", 0.01)
    assert first.state.metrics.registry is not second.state.metrics.registry
    assert b'outcome="accepted",topic="TASK_CREATED"' in first.state.metrics.render()
    assert b"reactor_webhook_events_total{" not in second.state.metrics.render()


def test_topic_labels_are_bounded():
    assert topic_label("PROFILE_UPDATED") == "PROFILE_UPDATED"
    assert topic_label("RESERVATION_CANCELLED") == "RESERVATION_CANCELLED"
    assert topic_label("made-up-by-a-sender") == "other"
    assert topic_label(None) == "unknown"
    assert topic_label("") == "unknown"


async def test_worker_serves_temporal_sdk_metrics_on_its_port(temporal_env, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = temporal_env.client.service_client.config.target_host
    settings = make_settings(tmp_path, TEMPORAL_ADDRESS=address, WORKER_METRICS_PORT=str(port))
    assert metrics_runtime(make_settings(tmp_path)) is None  # unset: off
    runtime = metrics_runtime(settings, host="127.0.0.1")
    client = await connect(settings, runtime=runtime)
    async with build_worker(client, settings), httpx.AsyncClient() as http:

        async def sdk_series() -> str | None:  # the first polls record the first series
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            return text if "temporal_" in text else None

        text = await until(sdk_series, "the worker's SDK metrics")
    assert settings.task_queue in text
