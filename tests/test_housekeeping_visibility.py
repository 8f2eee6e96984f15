"""The parts of housekeeping that read Temporal's visibility store, on the dev server:
open assignments counted per housekeeper, and a reservation's cancellation found."""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import sample
from tests.helpers import running_reactor, unique
from tests.integrations import integrations
from workflows.housekeeping import AssignmentState

ROSTER = """
timezone: UTC
staff:
  - {id: vis-ana, name: Ana, email: ana@hotel.example, floors: [4]}
  - {id: vis-bo, name: Bo, email: bo@hotel.example, floors: [4]}
"""


def cleaning(reservation: str) -> dict:
    event = unique(sample("task_created"))
    event["context"] = {**event["context"], "links": {"pmsDepartingReservationId": reservation}}
    return event


async def assigned(client, event: dict) -> AssignmentState:
    handle = client.get_workflow_handle(f"housekeeping-{event['objectId']}")
    for _ in range(200):
        try:
            state = await handle.query("state", result_type=AssignmentState)
            if state.status == "assigned":
                return state
        except Exception:  # noqa: BLE001 - not started yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("never assigned")


async def test_open_assignments_steer_the_choice_and_cancellation_reaches_them(
    temporal_env, tmp_path
):
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    reservation = f"RES-{uuid.uuid4().hex[:8]}"
    first, second = cleaning(reservation), cleaning(reservation)
    with integrations() as fakes:
        async with running_reactor(
            temporal_env.client, tmp_path, HOUSEKEEPING_ROSTER=str(roster), **fakes.settings()
        ) as reactor:
            await reactor.post(first)
            one = await assigned(reactor.client, first)
            # Wait until visibility counts Ana's open assignment.
            query = (
                'WorkflowType = "HousekeepingAssignment" AND ExecutionStatus = "Running" '
                'AND Housekeeper = "vis-ana"'
            )
            for _ in range(100):
                if (await reactor.client.count_workflows(query)).count == 1:
                    break
                await asyncio.sleep(0.1)
            await reactor.post(second)
            two = await assigned(reactor.client, second)

            cancel = unique(sample("reservation_cancelled"), objectId=reservation)
            await reactor.post(cancel)
            outcome = (await reactor.routed(cancel["id"])).reactions
            results = [
                await reactor.client.get_workflow_handle(
                    f"housekeeping-{e['objectId']}", result_type=AssignmentState
                ).result()
                for e in (first, second)
            ]

    assert one.assignee.id == "vis-ana"
    assert two.assignee.id == "vis-bo"  # Ana holds one open assignment already
    [housekeeping] = [o for o in outcome if o.reaction == "housekeeping"]
    assert housekeeping.status == "done"
    assert f"housekeeping-{first['objectId']}" in housekeeping.detail
    assert [r.status for r in results] == ["cancelled", "cancelled"]
    assert all(r.assignee is None for r in results)
    told = [r.json()["subject"] for r in fakes.sendgrid.requests]
    assert told.count("No longer yours: Departure cleaning room 412 (U-412)") == 2
