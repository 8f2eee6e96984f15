"""The parts of housekeeping that read Temporal's visibility store, on the dev server:
open assignments counted per housekeeper, and a reservation's cancellation found."""

from __future__ import annotations

import uuid

from core.temporal import RESERVATION_ID
from tests.conftest import sample
from tests.helpers import query_until, record_history, running_reactor, unique, until
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
    return await query_until(handle, AssignmentState, lambda s: s.status == "assigned", "assigned")


async def counted_open(client, staff_id: str) -> None:
    """Wait until visibility counts one running assignment held by ``staff_id`` (in the
    whole namespace, whatever the task queue)."""
    query = (
        'WorkflowType = "HousekeepingAssignment" AND ExecutionStatus = "Running" '
        f'AND Housekeeper = "{staff_id}"'
    )

    async def counted() -> bool:
        return (await client.count_workflows(query)).count == 1

    await until(counted, f"visibility counts the open assignment of {staff_id}")


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
            # Wait until visibility counts Ana's open assignment (on a slow machine it can
            # lag for seconds; the second choice must not be made before).
            await counted_open(reactor.client, "vis-ana")
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


async def test_a_reservation_named_only_by_a_later_update_is_still_cancelled(
    temporal_env, tmp_path
):
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    reservation = f"RES-{uuid.uuid4().hex[:8]}"
    created = unique(sample("task_created"))
    created["context"] = {k: v for k, v in created["context"].items() if k != "links"}
    update = unique(
        sample("task_completed"),
        objectId=created["objectId"],
        topic="TASK_UPDATED",
        context={"status": "OPEN", "links": {"pmsDepartingReservationId": reservation}},
    )
    with integrations() as fakes:
        async with running_reactor(
            temporal_env.client, tmp_path, HOUSEKEEPING_ROSTER=str(roster), **fakes.settings()
        ) as reactor:
            await reactor.post(created)
            await assigned(reactor.client, created)
            handle = reactor.client.get_workflow_handle(
                f"housekeeping-{created['objectId']}", result_type=AssignmentState
            )
            await reactor.post(update)
            state = await query_until(
                handle,
                AssignmentState,
                lambda s: update["id"] in s.events_applied,
                "the update applied",
            )
            # At once: visibility may not list the new ReservationId yet.
            cancel = unique(sample("reservation_cancelled"), objectId=reservation)
            await reactor.post(cancel)
            outcome = (await reactor.routed(cancel["id"])).reactions
            result = await handle.result()
            described = await handle.describe()
            await record_history("housekeeping_reservation_from_update", handle)

    assert state.reservation_id == reservation
    assert described.typed_search_attributes.get(RESERVATION_ID) == reservation
    [housekeeping] = [o for o in outcome if o.reaction == "housekeeping"]
    assert housekeeping.status == "done"
    assert result.status == "cancelled" and result.assignee is None


async def test_a_task_created_after_its_reservations_cancellation_is_assigned_as_usual(
    temporal_env, tmp_path
):
    """The README's stated limit: the cancellation reaches the assignments running when
    it arrives; a task created later is not caught and is assigned as any other."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    reservation = f"RES-{uuid.uuid4().hex[:8]}"
    cancel = unique(sample("reservation_cancelled"), objectId=reservation)
    late = cleaning(reservation)
    with integrations() as fakes:
        async with running_reactor(
            temporal_env.client, tmp_path, HOUSEKEEPING_ROSTER=str(roster), **fakes.settings()
        ) as reactor:
            await reactor.post(cancel)
            outcome = (await reactor.routed(cancel["id"])).reactions
            await reactor.post(late)
            state = await assigned(reactor.client, late)

    [housekeeping] = [o for o in outcome if o.reaction == "housekeeping"]
    assert housekeeping.status == "skipped"
    assert housekeeping.detail == "no open housekeeping assignment for this reservation"
    assert state.status == "assigned" and state.assignee is not None
    assert state.reservation_id == reservation
    told = [r.json()["subject"] for r in fakes.sendgrid.requests]
    assert not any(subject.startswith("No longer yours") for subject in told)


async def test_assignments_of_another_deployment_do_not_count(temporal_env, tmp_path):
    # Two reactors (two task queues) share the namespace and a roster's staff ids, as a
    # staging stack beside production would: Ana's open assignment in one does not make
    # her look busy in the other.
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER.replace("vis-", "dep-"))
    elsewhere, here = (
        cleaning(f"RES-{uuid.uuid4().hex[:8]}"),
        cleaning(f"RES-{uuid.uuid4().hex[:8]}"),
    )
    with integrations() as fakes:
        settings = {"HOUSEKEEPING_ROSTER": str(roster), **fakes.settings()}
        async with running_reactor(temporal_env.client, tmp_path / "a", **settings) as other:
            await other.post(elsewhere)
            assert (await assigned(other.client, elsewhere)).assignee.id == "dep-ana"
            await counted_open(other.client, "dep-ana")
            async with running_reactor(temporal_env.client, tmp_path / "b", **settings) as reactor:
                assert reactor.settings.task_queue != other.settings.task_queue
                await reactor.post(here)
                chosen = await assigned(reactor.client, here)
    assert chosen.assignee.id == "dep-ana"
