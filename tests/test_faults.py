"""The fault suite: real Temporal dev servers and a real worker process (`python -m cli
worker`), killed and restarted while events are in flight, against recording fake providers
with scripted delays. Each case prints its figures (events lost, duplicate effects per
provider); every case asserts that no event is lost, and the Temporal restarts and the slow
provider that no effect happens twice.

An event is lost when its router does not complete with every reaction done. An effect is
duplicated when a provider without idempotency keys accepted it more than once: SendGrid
counts by the email's ``reactor_key``, Slack by the message (each event's text is its own).
The event log deduplicates by its ``Idempotency-Key``: a request repeated there is shown,
not counted as an effect twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from api.intake import start_router
from core.events import LikeMagicEvent
from core.temporal import connect
from tests.conftest import sample
from tests.fakes import FakeService, Recorded, Reply
from tests.helpers import make_settings, unique
from tests.intake_support import ROOT, DevServer, until
from tests.integrations import Integrations, integrations
from workflows.reaction import RouterResult

# Worker kill -9: the seed of the kill points, and how many kills.
KILL_SEED = 13
WORKER_KILLS = 3
# How long every router has to finish once the fault is over (a retry waits out the 5 s
# heartbeat timeout, then backs off from 1 s).
SETTLE_SECONDS = 90.0
FAST_PROVIDER_SECONDS = 0.1


def fault_events(count: int, tag: str) -> list[dict[str, Any]]:
    """Guests checking in (a welcome email through SendGrid) and guests writing to the
    hotel (a support alert in Slack and a support email), alternately; each message's
    text is its own, so a second Slack post of it shows."""
    found: list[dict[str, Any]] = []
    for i in range(count):
        if i % 2 == 0:
            found.append(unique(sample("reservation_checked_in_seed_illustration")))
        else:
            message = unique(sample("message_received"))
            context = {**message["context"], "text": f"Extra pillows, {tag} message {i}"}
            found.append({**message, "context": context})
    return found


class WorkerProcess:
    """The worker as deployed (`python -m cli worker`), its log in a file of the test."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker"],
                env={**os.environ, **self.env},
                cwd=str(ROOT),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def worker_env(address: str, tmp: Path, fakes: Integrations) -> dict[str, str]:
    settings = make_settings(tmp, TEMPORAL_ADDRESS=address)
    return {
        "TEMPORAL_ADDRESS": address,
        "REACTOR_TASK_QUEUE": settings.task_queue,
        "INTAKE_DATABASE_URL": settings.intake_database_url,
        "EMAIL_OUTBOX_DIR": str(settings.email_outbox_dir),
        "EMAIL_FROM": settings.email_from,
        "LOG_LEVEL": "WARNING",
        **{name: str(value) for name, value in fakes.settings("crm").items()},
    }


async def start_all(client: Client, task_queue: str, events: list[dict[str, Any]]) -> None:
    settings = make_settings(Path("."), REACTOR_TASK_QUEUE=task_queue)
    for event in events:
        await start_router(client, settings, LikeMagicEvent.model_validate(event), budget=10)


async def lost_events(client: Client, events: list[dict[str, Any]]) -> list[str]:
    """The ids of events whose router did not complete with every reaction done."""

    async def outcome(event_id: str) -> bool:
        handle = client.get_workflow_handle(event_id, result_type=RouterResult)
        try:
            result = await asyncio.wait_for(handle.result(), SETTLE_SECONDS)
        except Exception:  # noqa: BLE001 - not finished, or failed: lost either way
            return False
        return all(r.status == "done" for r in result.reactions)

    done = await asyncio.gather(*(outcome(e["id"]) for e in events))
    return [e["id"] for e, ok in zip(events, done, strict=True) if not ok]


def _accepted(service: FakeService) -> list[Recorded]:
    return service.succeeded()


def duplicates(fakes: Integrations) -> dict[str, int]:
    """Per provider, how many effects it accepted more than once."""

    def repeated(keys: list[str]) -> int:
        return sum(1 for n in Counter(keys).values() if n > 1)

    return {
        "sendgrid": repeated(
            [r.json()["custom_args"]["reactor_key"] for r in _accepted(fakes.sendgrid)]
        ),
        "slack": repeated([r.body.decode() for r in _accepted(fakes.slack_support)]),
    }


def keyed_repeats(fakes: Integrations) -> int:
    """Requests the event log got again with a key it had: it keeps one (not an effect
    twice), but the figure shows how often a retry reached it."""
    keys = [str(r.header("Idempotency-Key")) for r in _accepted(fakes.event_log)]
    return len(keys) - len(set(keys))


def effects_missing(fakes: Integrations, events: list[dict[str, Any]]) -> int:
    """Guests who got no welcome email, and messages that reached no Slack channel."""
    emails = {r.json()["custom_args"]["reactor_key"] for r in _accepted(fakes.sendgrid)}
    posts = b"".join(r.body for r in _accepted(fakes.slack_support)).decode()
    missing = 0
    for event in events:
        if event["topic"] == "RESERVATION_CHECKED_IN":
            missing += not any(key.startswith(event["id"]) for key in emails)
        else:
            missing += event["context"]["text"] not in posts
    return missing


def report(case: str, events: list[dict[str, Any]], lost: list[str], fakes: Integrations) -> None:
    figures = {
        "events": len(events),
        "lost": len(lost),
        "effects missing": effects_missing(fakes, events),
        "duplicate effects": duplicates(fakes),
        "event log requests repeated with their key": keyed_repeats(fakes),
        "requests": {
            "sendgrid": len(fakes.sendgrid.requests),
            "slack": len(fakes.slack_support.requests),
            "event log": len(fakes.event_log.requests),
        },
    }
    print(f"\nfault suite | {case}: {json.dumps(figures)}")


def slow_providers(fakes: Integrations, seconds: float) -> None:
    fakes.sendgrid.default = Reply(202, None, {"X-Message-Id": "fault-message"}, delay=seconds)
    fakes.slack_support.default = Reply(200, "ok", delay=seconds)


async def _requests_at_least(service: FakeService, count: int) -> bool:
    return len(service.requests) >= count


# --- Temporal killed (SIGTERM, kill -9) with 20 events in flight --------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_temporal_restarted_with_20_events_in_flight_loses_none_and_sends_each_once(
    tmp_path, how
):
    server = DevServer(tmp_path)
    await server.start()
    with integrations() as fakes:
        # Requests take 2 s at the providers: most are under way when Temporal goes.
        slow_providers(fakes, 2.0)
        env = worker_env(server.address, tmp_path, fakes)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        events = fault_events(20, how.name)
        try:
            worker.start()
            client = await connect(make_settings(tmp_path, TEMPORAL_ADDRESS=server.address))
            await start_all(client, env["REACTOR_TASK_QUEUE"], events)
            await until(lambda: _requests_at_least(fakes.sendgrid, 8), "emails under way")
            server.stop(how)
            # The providers answer while Temporal is away: those completions are lost.
            await asyncio.sleep(3)
            await server.start()
            client = await connect(make_settings(tmp_path, TEMPORAL_ADDRESS=server.address))
            lost = await lost_events(client, events)
        finally:
            worker.stop()
            server.stop(signal.SIGKILL)
        report(f"Temporal {how.name} with 20 events in flight", events, lost, fakes)
        assert lost == []
        assert effects_missing(fakes, events) == 0
        assert duplicates(fakes) == {"sendgrid": 0, "slack": 0}


# --- The worker killed -9 at random points across 50 events -------------------------------


@pytest.mark.timeout(240)
async def test_worker_killed_at_random_points_across_50_events_loses_none(temporal_env, tmp_path):
    address = temporal_env.client.service_client.config.target_host
    rng = random.Random(KILL_SEED)
    with integrations() as fakes:
        # Fast providers (0.1 s): a kill finds some requests under way at a provider.
        slow_providers(fakes, FAST_PROVIDER_SECONDS)
        env = worker_env(address, tmp_path, fakes)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        events = fault_events(50, "worker-kill")
        kills: list[float] = []
        try:
            worker.start()
            await start_all(temporal_env.client, env["REACTOR_TASK_QUEUE"], events)
            for _ in range(WORKER_KILLS):
                # A random point once the worker is sending: mid-request, between
                # requests, or while it records what a provider answered.
                seen = len(fakes.sendgrid.requests)
                await until(
                    lambda seen=seen: _requests_at_least(fakes.sendgrid, seen + 1),
                    "the worker sends",
                )
                await asyncio.sleep(rng.uniform(0.0, 2.0))
                kills.append(time.monotonic())
                worker.stop(signal.SIGKILL)
                worker.start()
            lost = await lost_events(temporal_env.client, events)
        finally:
            worker.stop()
        # Sends a kill caught at the provider, before its answer: no ledger can save those.
        under_way = sum(
            1
            for r in [*fakes.sendgrid.requests, *fakes.slack_support.requests]
            for k in kills
            if k - FAST_PROVIDER_SECONDS < r.at <= k
        )
        report(
            f"worker kill -9 x{WORKER_KILLS} across 50 events "
            f"({under_way} sends under way at a provider when killed)",
            events,
            lost,
            fakes,
        )
        assert lost == []
        assert effects_missing(fakes, events) == 0


# --- A provider slower than the old 10 s timeout -------------------------------------------


@pytest.mark.timeout(180)
async def test_providers_taking_12_s_get_each_request_once(temporal_env, tmp_path):
    address = temporal_env.client.service_client.config.target_host
    with integrations() as fakes:
        slow_providers(fakes, 12.0)
        env = worker_env(address, tmp_path, fakes)
        worker = WorkerProcess(env, tmp_path / "worker.log")
        events = fault_events(6, "slow")
        try:
            worker.start()
            await start_all(temporal_env.client, env["REACTOR_TASK_QUEUE"], events)
            lost = await lost_events(temporal_env.client, events)
        finally:
            worker.stop()
        report("providers taking 12 s", events, lost, fakes)
        assert lost == []
        assert effects_missing(fakes, events) == 0
        assert duplicates(fakes) == {"sendgrid": 0, "slack": 0}
        # Each request once: not even a repeated request that a provider could refuse.
        assert len(fakes.sendgrid.requests) == len(_accepted(fakes.sendgrid))
        assert len(fakes.slack_support.requests) == len(events) // 2
