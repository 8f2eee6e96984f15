"""The welcome email reaction, end to end through the webhook, with a fake SendGrid."""

from __future__ import annotations

from email import message_from_bytes, policy

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities, EmailRequest
from tests.conftest import sample
from tests.fakes import FakeService, Reply
from tests.helpers import by_name, make_settings, running_reactor, unique
from tests.reactions import NOTE_THE_ROOM
from workflows import registry

SENDGRID_KEY = "SG.test-key"


def sendgrid_settings(fake: FakeService) -> dict[str, str]:
    return {"SENDGRID_API_KEY": SENDGRID_KEY, "SENDGRID_HOST": fake.url}


async def test_welcome_email_content_through_sendgrid(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    with FakeService() as sendgrid:
        async with running_reactor(
            temporal_env.client, tmp_path, **sendgrid_settings(sendgrid)
        ) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])

    outcomes = by_name(result)
    assert outcomes["welcome-email"].status == "done"
    [request] = sendgrid.requests
    assert request.method == "POST"
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == f"Bearer {SENDGRID_KEY}"
    mail = request.json()
    assert mail["from"] == {"email": "frontdesk@hotel.example"}
    assert mail["personalizations"][0]["to"] == [{"email": "ana.silva@example.com"}]
    assert mail["subject"] == "Welcome, Ana Silva!"
    text = {c["type"]: c["value"] for c in mail["content"]}
    assert "Hello Ana Silva," in text["text/plain"]
    assert "room 412" in text["text/plain"]
    assert "PROP-ZRH-01" in text["text/plain"]
    assert "room <strong>412</strong>" in text["text/html"]
    assert "None" not in text["text/plain"]
    assert mail["custom_args"] == {"reactor_key": f"{event['id']}/welcome-email"}


async def test_primary_guest_is_the_fallback_recipient_and_html_is_escaped(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    event["context"] = {
        "primaryGuest": {"firstName": "<b>Zoë</b>", "email": "zoe@example.com"},
    }
    with FakeService() as sendgrid:
        async with running_reactor(
            temporal_env.client, tmp_path, **sendgrid_settings(sendgrid)
        ) as reactor:
            await reactor.post(event)
            await reactor.routed(event["id"])
    mail = sendgrid.requests[0].json()
    assert mail["personalizations"][0]["to"] == [{"email": "zoe@example.com"}]
    html = next(c["value"] for c in mail["content"] if c["type"] == "text/html")
    assert "&lt;b&gt;Zoë&lt;/b&gt;" in html
    assert "<b>" not in html
    plain = next(c["value"] for c in mail["content"] if c["type"] == "text/plain")
    assert "room" not in plain  # no room number in the event: no half sentence


async def test_outbox_mode_writes_one_readable_file(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        await reactor.post(event)
        result = await reactor.routed(event["id"])
    assert by_name(result)["welcome-email"].detail == (
        "welcome email via outbox (guest from the event)"
    )
    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == [f"{event['id']}__welcome-email.eml"]
    mail = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert mail["To"] == "ana.silva@example.com"
    assert mail["Subject"] == "Welcome, Ana Silva!"
    assert "room 412" in mail.get_body(("plain",)).get_content()


async def test_outbox_activity_run_twice_writes_once(tmp_path):
    activities = EmailActivities(make_settings(tmp_path))
    request = EmailRequest(
        key="evt-1/welcome-email", kind="welcome", to="a@example.com", data={"guest_name": "A"}
    )
    env = ActivityEnvironment()
    first = await env.run(activities.send_email, request)
    changed = request.model_copy(update={"data": {"guest_name": "a retry must not rewrite"}})
    second = await env.run(activities.send_email, changed)
    assert first.reference == second.reference
    files = list((tmp_path / "outbox").iterdir())
    assert len(files) == 1
    assert b"a retry must not rewrite" not in files[0].read_bytes()


async def test_no_recipient_is_skipped_with_the_reason(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    event["context"] = {"roomNumber": "412"}
    with FakeService() as sendgrid:
        async with running_reactor(
            temporal_env.client, tmp_path, **sendgrid_settings(sendgrid)
        ) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])
    outcome = by_name(result)["welcome-email"]
    assert outcome.status == "skipped"
    assert outcome.detail == (
        "no recipient: tried the event (no guest in its context); the reservation's journey "
        f"(it knows no guest of {event['objectId']}); the LIKE MAGIC profile (no userProfileId "
        "in the event or journey)"
    )
    assert sendgrid.requests == []


async def test_sendgrid_500_then_202_sends_exactly_one_email(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    with FakeService() as sendgrid:
        sendgrid.fail_next(Reply(500, {"errors": [{"message": "internal"}]}))
        async with running_reactor(
            temporal_env.client, tmp_path, **sendgrid_settings(sendgrid)
        ) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])
    assert by_name(result)["welcome-email"].status == "done"
    assert [r.status for r in sendgrid.requests] == [500, 202]
    assert len(sendgrid.succeeded()) == 1


async def test_sendgrid_429_is_retried_after_its_retry_after(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    with FakeService() as sendgrid:
        sendgrid.fail_next(Reply(429, {"errors": [{"message": "too many"}]}, {"Retry-After": "1"}))
        async with running_reactor(
            temporal_env.client, tmp_path, **sendgrid_settings(sendgrid)
        ) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])
    assert by_name(result)["welcome-email"].status == "done"
    assert [r.status for r in sendgrid.requests] == [429, 202]


async def test_sendgrid_400_fails_that_reaction_only(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in_seed_illustration"))
    rejection = {"errors": [{"message": "The to email does not contain a valid address."}]}
    with FakeService() as sendgrid, registry.registered(NOTE_THE_ROOM):
        # Both tries are rejected: the router's, then its workflow's (README, "What an
        # event costs": a send the router runs is its workflow's again when it fails).
        sendgrid.fail_next(Reply(400, rejection), Reply(400, rejection))
        async with running_reactor(
            temporal_env.client, tmp_path, **sendgrid_settings(sendgrid)
        ) as reactor:
            await reactor.post(event)
            result = await reactor.routed(event["id"])
            welcome = reactor.client.get_workflow_handle(f"{event['id']}/welcome-email")
            described = await welcome.describe()

    outcomes = by_name(result)
    assert outcomes["welcome-email"].status == "failed"
    assert "SendGrid rejected the email: 400" in outcomes["welcome-email"].detail
    assert "does not contain a valid address" in outcomes["welcome-email"].detail
    assert outcomes["note-the-room"].status == "done"
    assert outcomes["note-the-room"].detail == "room 412"
    assert described.status == WorkflowExecutionStatus.FAILED
    # A rejection is not retried: once in the router, once by the reaction's workflow.
    assert [r.status for r in sendgrid.requests] == [400, 400]
