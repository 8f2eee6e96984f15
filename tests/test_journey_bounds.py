"""A journey that never learns its dates ends after JOURNEY_IDLE_DAYS, and `reactor status`
shows it (stage, messages and when) instead of refusing a workflow that is no event."""

from __future__ import annotations

import json
from datetime import timedelta

from cli.status import _long_running_lines, long_running_status
from tests.conftest import sample
from tests.helpers import query_until, skip_until, unique
from tests.integrations import integrations
from tests.test_guest_journey import journey
from workflows.guest_journey import JourneyState


async def test_a_journey_without_dates_ends_after_its_idle_days_and_status_shows_it(
    skipping_env, tmp_path
):
    event = unique(sample("reservation_checked_in"))  # a check-in: no dates, as sent
    event["context"]["guest"] = {"email": "ana.silva@example.com"}
    with integrations() as fakes:
        async with journey(skipping_env, tmp_path, fakes, None, JOURNEY_IDLE_DAYS="2") as reactor:
            assert (await reactor.post(event)).json()["status"] == "accepted"
            await reactor.routed(event["id"])
            handle = reactor.client.get_workflow_handle(
                f"journey-{event['objectId']}", result_type=JourneyState
            )
            state = await query_until(
                handle, JourneyState, lambda s: s.stage == "checked_in", "checked in"
            )
            found = await long_running_status(
                reactor.client, reactor.settings, await handle.describe()
            )
            assert state.idle_until is not None
            await skip_until(skipping_env, state.idle_until + timedelta(minutes=1))
            ended = await handle.result()
            closed = await long_running_status(
                reactor.client, reactor.settings, await handle.describe()
            )

    assert state.arrival is None and state.departure is None
    assert state.idle_until is not None and state.last_news_at is not None
    assert (state.idle_until - state.last_news_at).days == 2
    text = "\n".join(_long_running_lines(found))
    assert text.startswith(f"journey-{event['objectId']}  GuestJourney  RUNNING")
    assert "stage checked_in" in text and "ends if nothing happens by" in text
    assert "pre_arrival" in text and "review_request" in text
    assert "ana.silva" not in json.dumps(found, default=str)
    assert ended.completed and ended.stage == "checked_in"
    assert closed["status"] == "COMPLETED" and closed["state"]["completed"]
