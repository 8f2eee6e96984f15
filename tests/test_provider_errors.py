"""Provider error texts are scrubbed of guest data before they reach logs, alerts and
workflow histories (activities/policy.py, the one failure policy)."""

from __future__ import annotations

import logging

from activities.policy import scrub
from tests.conftest import sample
from tests.fakes import Reply
from tests.helpers import by_name, running_reactor, unique
from tests.integrations import integrations

GUEST = ("ana.silva@example.com", "Ana Silva", "+41 79 111 22 33")


def test_scrub_replaces_addresses_phones_and_the_request_s_names():
    text = (
        "email Ana.Silva@Example.com is already used by ANA SILVA (+41 79 111 22 33, "
        "0041791112233) since 2026-12-10; request 4a7f"
    )
    assert scrub(text, ["Ana Silva", None, ""]) == (
        "email <email> is already used by <guest> (<phone>, <phone>) since 2026-12-10; request 4a7f"
    )


async def test_a_provider_error_quoting_the_guest_reaches_no_log_alert_or_history(
    temporal_env, tmp_path, caplog
):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    quoted = {
        "errors": [
            {"message": "email ana.silva@example.com is already used by Ana Silva"},
            {"message": "call +41 79 111 22 33 to confirm"},
        ]
    }
    caplog.set_level(logging.INFO)  # the SDKs log whole requests at DEBUG
    with integrations() as fakes:
        # Rejected in the router, then in the reaction's workflow that runs it again.
        fakes.sendgrid.fail_next(Reply(400, quoted), Reply(400, quoted))
        async with running_reactor(temporal_env.client, tmp_path, **fakes.settings()) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])
            histories = [
                await reactor.client.get_workflow_handle(workflow_id).fetch_history()
                for workflow_id in (event["id"], f"{event['id']}/welcome-email")
            ]

    welcome = by_name(result)["welcome-email"]
    assert welcome.status == "failed"
    assert welcome.detail == (
        "SendGrid rejected the email: 400 email <guest> is already used by <guest>; "
        "call <phone> to confirm"
    )
    [alert] = [r for r in fakes.slack_ops.requests if "welcome-email" in r.body.decode()]
    assert "&lt;guest&gt; is already used" in alert.body.decode()
    # The history holds the event itself (its input); the failures must not add the guest.
    # Failures are encrypted in the history (the payload codec): as stored, and as
    # decoded with the key, neither holds the guest.
    stored = [
        e.activity_task_failed_event_attributes.failure
        for history in histories
        for e in history.events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    decoded = [str(await temporal_env.client.data_converter.decode_failure(f)) for f in stored]
    assert len([f for f in decoded if "<guest> is already used" in f]) == 2
    failures = [str(f) for f in stored] + decoded
    places = {
        "history failures": "\n".join(failures),
        "alert": alert.body.decode(),
        "logs": caplog.text,
    }
    for where, text in places.items():
        for value in GUEST:
            assert value not in text, (where, value)
