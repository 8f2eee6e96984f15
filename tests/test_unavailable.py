"""When Temporal is down or hangs, the webhook queues the event and answers 200 in time
(tests/test_intake.py: what happens to it afterwards, and when even the queue fails)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from api.app import create_app
from tests.conftest import sample, start_dev_server
from tests.helpers import SECRET, make_settings, unique

# The publisher gives up after 5 s: this is a protocol limit, not a speed goal.
PUBLISHER_TIMEOUT = 5.0


@asynccontextmanager
async def api_for(address: str, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    """The API as `reactor api` builds it: it connects to Temporal itself."""
    app = create_app(make_settings(tmp_path, TEMPORAL_ADDRESS=address))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reactor") as http:
            yield http


async def timed_post(http: httpx.AsyncClient, event: dict) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await http.post(
        "/webhooks/likemagic", json=event, headers={"lm-webhook-secret": SECRET}
    )
    return response, time.monotonic() - started


def assert_queued(response: httpx.Response, elapsed: float, reason: str) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    assert response.json()["reason"] == reason
    assert elapsed < PUBLISHER_TIMEOUT


async def test_temporal_stopped_queues_in_time(tmp_path):
    env = await start_dev_server()
    address = env.client.service_client.config.target_host
    event = unique(sample("reservation_created"))
    try:
        async with api_for(address, tmp_path) as http:
            first, _ = await timed_post(http, unique(sample("task_created")))
            assert first.json()["status"] == "accepted"
            assert (await http.get("/readyz")).status_code == 200

            await env.shutdown()
            response, elapsed = await timed_post(http, event)
            assert_queued(response, elapsed, "temporal_unavailable")
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["temporal"].startswith("unavailable")
    finally:
        await env.shutdown()


async def test_nothing_listening_queues_in_time(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with api_for(f"127.0.0.1:{port}", tmp_path) as http:
        response, elapsed = await timed_post(http, unique(sample("task_created")))
    assert_queued(response, elapsed, "temporal_unavailable")


async def test_server_that_never_answers_queues_after_the_budget(tmp_path):
    held: list[asyncio.StreamWriter] = []

    async def swallow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept the connection, never say a word

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with api_for(f"127.0.0.1:{port}", tmp_path) as http:
            response, elapsed = await timed_post(http, unique(sample("task_created")))
        assert_queued(response, elapsed, "temporal_slow")
    finally:
        for writer in held:
            writer.close()
        server.close()
