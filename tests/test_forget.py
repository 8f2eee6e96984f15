"""`reactor forget` against the dev server: a guest's executions and outbox emails go,
another guest's stay."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner, Result

import cli
from tests.conftest import sample
from tests.helpers import SECRET, running_reactor, unique, until


async def exists(client: Any, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@pytest.mark.timeout(240)
async def test_forget_a_reservation_leaves_nothing_about_it_and_keeps_other_guests(
    temporal_env, tmp_path
):
    client = temporal_env.client
    created = unique(sample("reservation_created"))
    guest = created["objectId"]
    checked_in = unique(sample("reservation_checked_in"), objectId=guest)
    message = unique(sample("message_received"))
    message["context"] = {**message["context"], "reservationId": guest}
    other = unique(sample("reservation_created"))
    events = [created, checked_in, message, other]
    async with running_reactor(client, tmp_path, REACTOR_ENV="development") as reactor:
        for event in events:
            assert (await reactor.post(event)).json()["status"] == "accepted"
            await reactor.routed(event["id"])
        settings = reactor.settings
        outbox = settings.email_outbox_dir
        assert len(list(outbox.glob("*.eml"))) == 3  # two confirmations, one welcome

        about_guest = {created["id"], checked_in["id"], message["id"], f"journey-{guest}"}
        query = f'ObjectId = "{guest}" OR ReservationId = "{guest}"'

        async def listed() -> set[str]:
            return {e.id async for e in client.list_workflows(query)}

        # Visibility catches up with the starts (routers, reactions, the journey).
        await until(lambda: _has(listed, about_guest), "the guest's executions listed", pause=0.2)
        env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
            "EMAIL_OUTBOX_DIR": str(outbox),
            "WEBHOOK_SECRET": SECRET,
        }

        dry = await reactor_cli(env, "forget", "--reservation", guest, "--dry-run", "--json")
        assert dry.exit_code == 0, dry.output
        planned = {e["workflow_id"] for e in json.loads(dry.stdout)["executions"]}
        assert about_guest <= planned
        assert f"{created['id']}/welcome-email" not in planned  # not a reaction of a creation
        # The check-in's welcome email ran in its router (listed above): no execution
        # of its own; its outbox email goes with the router (checked below).
        assert f"{checked_in['id']}/welcome-email" not in planned
        assert not {other["id"], f"journey-{other['objectId']}"} & planned
        assert all([await exists(client, w) for w in planned])  # a dry run changes nothing

        erased = await reactor_cli(env, "forget", "--reservation", guest, "--yes")
        assert erased.exit_code == 0, erased.output
        assert "terminated, deleted" in erased.stdout  # the running journey
        assert f"erased {len(planned)} execution(s) about reservation {guest}" in erased.stdout

        async def all_gone() -> bool:
            return not [w for w in planned if await exists(client, w)]

        # The server deletes asynchronously (the dev server within about a minute).
        await until(all_gone, f"all erased: {erased.stdout}", seconds=150, pause=0.2)
        # The other guest's executions and email stay.
        assert await exists(client, other["id"])
        assert await exists(client, f"journey-{other['objectId']}")
        [left] = list(outbox.glob("*.eml"))
        assert left.name.startswith(other["id"])

        # Idempotent: nothing left to do.
        again = await reactor_cli(env, "forget", "--reservation", guest, "--yes")
        assert again.exit_code == 0, again.output

        async def nothing_left() -> bool:
            result = await reactor_cli(env, "forget", "--reservation", guest, "--dry-run")
            return "nothing about reservation" in result.stdout

        await until(nothing_left, "nothing left", seconds=60, pause=0.2)


async def _has(listed: Any, wanted: set[str]) -> bool:
    return wanted <= await listed()


async def reactor_cli(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    """`reactor ARGS` in a thread: its asyncio.run must not meet the test's loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli.app, list(args), input=input, env=env)


async def test_forget_asks_before_erasing_and_needs_something_to_forget(temporal_env, tmp_path):
    client = temporal_env.client
    event = unique(sample("reservation_created"))
    async with running_reactor(client, tmp_path, REACTOR_ENV="development") as reactor:
        await reactor.post(event)
        await reactor.routed(event["id"])
        env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
        }
        query = f'ObjectId = "{event["objectId"]}"'

        async def visible() -> bool:
            return bool([e async for e in client.list_workflows(query)])

        await until(visible, "visible", pause=0.2)
        refused = await reactor_cli(env, "forget", "--reservation", event["objectId"], input="n\n")
        assert refused.exit_code == 1
        assert "nothing erased" in refused.output
        assert await exists(client, event["id"])
    nothing = await reactor_cli(env, "forget")
    assert nothing.exit_code == 2
    assert "give --reservation R or --profile P" in nothing.output
