"""Provider calls: a slow provider is waited for, never asked twice, and it holds up
nothing else (the blocking SDKs run on a pool as large as the worker's concurrency)."""

from __future__ import annotations

import asyncio

from temporalio.testing import ActivityEnvironment

from activities.email import EmailRequest
from activities.slack import SlackMessage
from tests.conftest import sample
from tests.fakes import Reply
from tests.helpers import activity_name, by_name, make_settings, running_reactor, unique
from tests.integrations import integrations
from workflows import registry

# More than the largest default thread pool (32 threads), whatever the machine.
SLOW_SENDS = 40


async def test_a_provider_slower_than_the_old_10_s_timeout_gets_each_request_once(
    temporal_env, tmp_path
):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    with integrations() as fakes:
        # 12 s: past the old 10 s HTTP timeout and past the 5 s heartbeat timeout, which
        # the activity's heartbeats keep from firing while it waits.
        fakes.sendgrid.fail_next(Reply(202, None, {"X-Message-Id": "slow-1"}, delay=12))
        async with running_reactor(
            temporal_env.client, tmp_path, **fakes.settings("slack_ops", "slack_support")
        ) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])
    assert by_name(result)["welcome-email"].status == "done"
    assert len(fakes.sendgrid.requests) == 1


async def test_slow_sends_do_not_hold_up_an_unrelated_reaction(temporal_env, tmp_path):
    with integrations() as fakes:
        settings = make_settings(
            tmp_path, WORKER_MAX_CONCURRENT_ACTIVITIES=SLOW_SENDS + 10, **fakes.settings()
        )
        activities = {
            activity_name(a): a for a in registry.build_activities(settings, temporal_env.client)
        }
        send_email, post_slack = activities["send_email"], activities["post_slack"]
        fakes.sendgrid.hold.set()
        slow = [
            asyncio.create_task(
                ActivityEnvironment().run(
                    send_email,
                    EmailRequest(key=f"slow-{i}", kind="welcome", to=f"g{i}@example.com"),
                )
            )
            for i in range(SLOW_SENDS)
        ]
        # Every slow send reached SendGrid and is waiting for its answer ...
        for _ in range(1200):
            if len(fakes.sendgrid.requests) == SLOW_SENDS:
                break
            await asyncio.sleep(0.05)
        assert len(fakes.sendgrid.requests) == SLOW_SENDS
        # ... and a Slack message of another reaction still goes out meanwhile.
        fast = await ActivityEnvironment().run(
            post_slack, SlackMessage(channel="operations", text="room 412 is ready")
        )
        assert fast.status == "sent"
        assert not any(task.done() for task in slow)
        fakes.sendgrid.release()
        sent = await asyncio.gather(*slow)
    assert [d.status for d in sent] == ["sent"] * SLOW_SENDS
    assert len(fakes.slack_ops.requests) == 1
