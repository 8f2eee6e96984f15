"""Guest-facing reactions on the platform's thin payloads: the guest comes from the event,
else the reservation's journey, else the LIKE MAGIC profile; the outcome names the source,
and a skip names everything tried. Through the webhook, on a real Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid
from email import message_from_bytes, policy
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.temporal import (
    JOURNEY_GUEST_MEMO,
    JOURNEY_SHAPE_MEMO,
    JOURNEY_WORKFLOW,
    JourneyInput,
    TemporalActivities,
    journey_workflow_id,
)
from core.guest import Guest
from tests.conftest import sample
from tests.fakes import FakeLikeMagic, FakeService, Reply
from tests.helpers import (
    WAIT_SECONDS,
    by_name,
    make_settings,
    record_history,
    running_reactor,
    shifted,
    unique,
    weeks_ahead,
)
from workflows.guest_journey import JourneyState

ANA_DE = {
    "firstName": "Ana",
    "lastName": "Silva",
    "email": "ana.silva@example.com",
    "preferredLanguage": "de-CH",
}
OPEN_API_MISSING = (
    "the LIKE MAGIC profile (the LIKE MAGIC Open API is not configured (set "
    "LIKEMAGIC_API_URL, LIKEMAGIC_TOKEN_URL, LIKEMAGIC_CLIENT_ID, LIKEMAGIC_CLIENT_SECRET))"
)


def stay() -> tuple[dict, dict]:
    """The sample reservation's creation and its thin check-in, as a fresh reservation."""
    created = shifted(unique(sample("reservation_created")), weeks_ahead())
    checked_in = unique(sample("reservation_checked_in"), objectId=created["objectId"])
    return created, checked_in


def outbox(tmp_path: Path, event_id: str, reaction: str):
    path = tmp_path / "outbox" / f"{event_id}__{reaction}.eml"
    return message_from_bytes(path.read_bytes(), policy=policy.default)


async def test_a_thin_check_in_after_its_reservation_welcomes_the_primary_guest(
    temporal_env, tmp_path
):
    created, checked_in = stay()
    assert checked_in["context"] == {"checkedInBy": "KIOSK", "userProfileId": 902211}
    async with running_reactor(temporal_env.client, tmp_path) as reactor:
        await reactor.post(created)
        await reactor.routed(created["id"])
        await reactor.post(checked_in)
        result = by_name(await reactor.routed(checked_in["id"]))
        journey = temporal_env.client.get_workflow_handle(journey_workflow_id(created["objectId"]))
        memo = await (await journey.describe()).memo()

    welcome = result["welcome-email"]
    assert (welcome.status, welcome.detail) == (
        "done",
        "welcome email via outbox (guest from the reservation's journey)",
    )
    # Where the welcome email read it: the journey keeps its guest in its memo.
    assert memo[JOURNEY_GUEST_MEMO]["email"] == "ana.silva@example.com"
    mail = outbox(tmp_path, checked_in["id"], "welcome-email")
    assert mail["To"] == "ana.silva@example.com"
    assert mail["Subject"] == "Welcome, Ana Silva!"
    assert mail["Content-Language"] == "en"


async def test_the_property_language_applies_when_the_guest_has_none(temporal_env, tmp_path):
    created, checked_in = stay()
    async with running_reactor(
        temporal_env.client, tmp_path, PROPERTY_LANGUAGES='{"PROP-ZRH-01": "fr"}'
    ) as reactor:
        await reactor.post(created)
        confirmation = by_name(await reactor.routed(created["id"]))["booking-confirmation"]
        await reactor.post(checked_in)
        await reactor.routed(checked_in["id"])

    assert confirmation.detail == (
        "booking_confirmation email in fr via outbox (guest from the event)"
    )
    booked = outbox(tmp_path, created["id"], "booking-confirmation")
    assert booked["Subject"].startswith("Votre réservation chez PROP-ZRH-01 est confirmée : ")
    welcome = outbox(tmp_path, checked_in["id"], "welcome-email")
    assert welcome["Subject"] == "Bienvenue, Ana Silva !"
    assert "PROP-ZRH-01 vous souhaite la bienvenue !" in welcome.get_body(("plain",)).get_content()


async def test_a_thin_check_in_reactor_never_saw_fetches_the_profile_with_one_token(
    temporal_env, tmp_path
):
    check_ins = [unique(sample("reservation_checked_in")) for _ in range(3)]
    with FakeLikeMagic() as api:
        api.profiles["902211"] = ANA_DE
        api.fail_next(Reply(429, {"message": "slow down"}, {"Retry-After": "1"}))
        async with running_reactor(temporal_env.client, tmp_path, **api.settings()) as reactor:
            results = []
            for event in check_ins:
                await reactor.post(event)
                results.append(by_name(await reactor.routed(event["id"]))["welcome-email"])

    assert [r.detail for r in results] == [
        "welcome email in de via outbox (guest from the LIKE MAGIC profile 902211)"
    ] * 3
    assert len(api.tokens) == 1
    # The 429 was retried after its Retry-After, by the failure policy.
    assert [r.status for r in api.requests] == [429, 200, 200, 200]
    assert api.requests[1].at - api.requests[0].at >= 1.0
    mail = outbox(tmp_path, check_ins[0]["id"], "welcome-email")
    assert mail["To"] == "ana.silva@example.com"
    assert mail["Subject"] == "Willkommen, Ana Silva!"
    assert mail["Content-Language"] == "de"
    assert "heißt Sie herzlich willkommen" in mail.get_body(("plain",)).get_content()


async def test_no_source_knows_the_guest_skips_naming_what_was_tried(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in"))
    with FakeLikeMagic() as api:
        async with running_reactor(temporal_env.client, tmp_path) as reactor:
            await reactor.post(event)
            unconfigured = by_name(await reactor.routed(event["id"]))["welcome-email"]
        missing = unique(sample("reservation_checked_in"))
        async with running_reactor(temporal_env.client, tmp_path, **api.settings()) as reactor:
            await reactor.post(missing)
            not_found = by_name(await reactor.routed(missing["id"]))["welcome-email"]

    tried = (
        "no recipient: tried the event (no guest in its context); the reservation's journey "
        "(it knows no guest of {}); "
    )
    assert unconfigured.status == not_found.status == "skipped"
    assert unconfigured.detail == tried.format(event["objectId"]) + OPEN_API_MISSING
    assert not_found.detail == (
        tried.format(missing["objectId"])
        + "the LIKE MAGIC profile (LIKE MAGIC has no profile 902211)"
    )
    assert not (tmp_path / "outbox").exists()


async def test_support_alert_names_the_guest_from_the_reservation_journey(temporal_env, tmp_path):
    created, _ = stay()
    message = unique(sample("message_received"))
    message["context"] = {
        "reservationId": created["objectId"],
        "text": "Could we get two extra pillows?",
    }
    with FakeService(Reply(200, "ok")) as slack:
        async with running_reactor(
            temporal_env.client, tmp_path, SLACK_SUPPORT_WEBHOOK_URL=f"{slack.url}/s"
        ) as reactor:
            await reactor.post(created)
            await reactor.routed(created["id"])
            await reactor.post(message)
            alert = by_name(await reactor.routed(message["id"]))["support-alert"]

    assert alert.status == "done"
    assert alert.detail.endswith("guest from the reservation's journey")
    posted = slack.requests[0].json()["text"]
    assert posted == f"Ana Silva ({created['objectId']}) wrote: Could we get two extra pillows?"


async def test_a_journey_without_a_guest_address_reads_the_profile(temporal_env, tmp_path):
    # The documented cancellation names only the profile: the journey asks the Open API.
    cancelled = unique(sample("reservation_cancelled"))
    with FakeLikeMagic() as api:
        api.profiles["903300"] = {
            "firstName": "Marco",
            "email": "marco@example.com",
            "language": "it",
        }
        async with running_reactor(
            temporal_env.client, tmp_path, JOURNEY_QUIET_HOURS="", **api.settings()
        ) as reactor:
            await reactor.post(cancelled)
            await reactor.routed(cancelled["id"])
            journey = reactor.client.get_workflow_handle(
                f"journey-{cancelled['objectId']}", result_type=JourneyState
            )
            state = await journey.result()
            await record_history("journey_guest_from_profile", journey)

    message = state.messages["cancellation"]
    assert (message.status, state.guest_email, state.profile_id) == (
        "sent",
        "marco@example.com",
        "903300",
    )
    key = f"journey-{cancelled['objectId']}/cancellation".replace("/", "__")
    mail = message_from_bytes(
        (tmp_path / "outbox" / f"{key}.eml").read_bytes(), policy=policy.default
    )
    assert mail["To"] == "marco@example.com"
    assert mail["Subject"] == f"La Sua prenotazione {cancelled['objectId']} è stata cancellata"
    assert message.detail == "journey_cancellation email in it"


async def test_the_journey_guest_is_read_from_its_memo_with_no_worker_task(temporal_env, tmp_path):
    # A journey keeps its guest in its memo (encrypted, like every payload): the lookup
    # describes it, which needs no worker. Here no worker polls the journey's task queue,
    # so a query would never be answered.
    client = temporal_env.client
    reservation = f"RES-{uuid.uuid4()}"
    guest = Guest(name="Ana Silva", email="ana.silva@example.com", language="de-CH")
    handle = await client.start_workflow(
        JOURNEY_WORKFLOW,
        JourneyInput(reservation_id=reservation),
        id=journey_workflow_id(reservation),
        task_queue=f"no-worker-{uuid.uuid4()}",
        memo={JOURNEY_SHAPE_MEMO: 3, JOURNEY_GUEST_MEMO: guest},
    )
    temporal = TemporalActivities(make_settings(tmp_path), client)
    try:
        found = await asyncio.wait_for(
            ActivityEnvironment().run(temporal.journey_guest, reservation), WAIT_SECONDS
        )
        missing = await ActivityEnvironment().run(temporal.journey_guest, f"RES-{uuid.uuid4()}")
        raw = (await handle.describe()).raw_description.workflow_execution_info.memo
    finally:
        await handle.terminate("test done")
    assert found == guest
    assert missing is None
    assert raw.fields[JOURNEY_GUEST_MEMO].metadata["encoding"] == b"binary/encrypted"
    assert b"ana.silva" not in raw.fields[JOURNEY_GUEST_MEMO].data
