"""README claims about order, timing and skips, each a test named after the claim.

Other claims cite their tests where the README makes them (test_router_deploy,
test_housekeeping, test_housekeeping_visibility, test_stuck_events, ...).
"""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import by_name, query_until, skip_until, unique
from tests.integrations import integrations
from tests.test_housekeeping import Stay, start, task_events
from workflows.housekeeping import AssignmentState


async def test_a_task_completed_that_comes_first_ends_the_assignment_at_once(
    skipping_env, tmp_path, clock
):
    created, completed, _ = task_events()
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            with skipping_env.auto_time_skipping_disabled():
                # The server's clock stands still: a wait for TASK_CREATED never ends.
                before = await skipping_env.get_current_time()
                await stay.post(completed)
                state = await query_until(
                    stay.handle, AssignmentState, lambda s: s.status != "waiting_for_task", "ended"
                )
                result = await stay.handle.result()
                ended = await skipping_env.get_current_time()
                await stay.post(created)
                late = await reactor.routed(created["id"])
            await stay.settle()

    assert state.status == "completed" and result.status == "completed"
    assert ended - before < timedelta(minutes=1)
    assert result.assignee is None and result.completed_by == "hk-ines"
    outcome = by_name(late)["housekeeping"]
    assert outcome.status == "skipped" and "already finished" in outcome.detail
    assert stay.pms() == [] and fakes.sendgrid.requests == []


async def test_an_assignment_without_its_task_created_closes_after_24_hours(
    skipping_env, tmp_path, clock
):
    created, _, _ = task_events()
    updated = unique(created, topic="TASK_UPDATED", context={"status": "IN_PROGRESS"})
    updated["objectId"] = created["objectId"]
    with integrations() as fakes:
        async with await start(skipping_env, tmp_path, fakes, clock) as reactor:
            stay = Stay(skipping_env, reactor, fakes, created)
            await stay.post(updated)
            waiting = await stay.until(
                lambda s: updated["id"] in s.events_applied, "the update applied"
            )
            await stay.settle()
            started = await skipping_env.get_current_time()
            await skip_until(skipping_env, started + timedelta(hours=23, minutes=50))
            still = await stay.state()
            await skip_until(skipping_env, started + timedelta(hours=24, minutes=1))
            with skipping_env.auto_time_skipping_disabled():
                result = await stay.handle.result()

    assert waiting.status == "waiting_for_task" and still.status == "waiting_for_task"
    assert result.status == "closed" and result.assignee is None
    assert stay.pms() == [] and fakes.sendgrid.requests == []
