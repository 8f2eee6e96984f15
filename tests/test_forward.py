"""Signed forwarding: each event to each matching FORWARD_TARGETS target, verified by
receivers with the Standard Webhooks library, as a third party would."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from activities.targets import read_targets
from tests.conftest import sample
from tests.fakes import FakeService, Recorded, Reply
from tests.helpers import by_name, record_history, running_reactor, unique
from tests.integrations import integrations
from workflows.registry import REACTIONS

STAY = [
    "reservation_created",
    "profile_updated",
    "reservation_checked_in",
    "message_received",
    "task_created",
    "task_completed",
    "reservation_checked_out",
    "reservation_cancelled",
]
# Only the forward targets react: the registry's reactions are switched off.
ONLY_FORWARDING = ",".join(r.name for r in REACTIONS)


def secret(seed: str) -> str:
    return "whsec_" + base64.b64encode(seed.encode().ljust(32, b"-")).decode()


def verifier(whsec: str) -> Callable[[bytes, dict[str, str]], str | None]:
    """A receiver's check: the Standard Webhooks library must accept every request."""

    def check(body: bytes, headers: dict[str, str]) -> str | None:
        try:
            Webhook(whsec).verify(body, headers)
        except WebhookVerificationError as err:
            return f"signature: {err}"
        return None

    return check


def targets_file(tmp_path: Path, *targets: dict[str, Any]) -> Path:
    path = tmp_path / "forward-targets.yaml"
    path.write_text(yaml.safe_dump({"targets": list(targets)}))
    return path


async def forward(temporal_env, tmp_path, events, path, record: str = "", **settings):
    """Post the events to a reactor with only forwarding on; the router outcomes by event.
    ``record``: keep the first event's router and forward histories under that name."""
    with integrations() as fakes:
        values = {
            **fakes.settings(),
            "REACTOR_DISABLED_REACTIONS": ONLY_FORWARDING,
            "FORWARD_TARGETS": str(path),
            **settings,
        }
        async with running_reactor(temporal_env.client, tmp_path, **values) as reactor:
            outcomes = {}
            for event in events:
                assert (await reactor.post(event)).json()["status"] == "accepted"
                outcomes[event["id"]] = by_name(await reactor.routed(event["id"]))
            if record:
                first = outcomes[events[0]["id"]]
                await record_history(f"router_{record}", reactor.router(events[0]["id"]))
                [child] = [o.workflow_id for n, o in first.items() if n.startswith("forward-")]
                handle = reactor.client.get_workflow_handle(child)
                await record_history(f"forward_{record}", handle)
        return outcomes, [r.json()["text"] for r in fakes.slack_ops.succeeded()]


def ids(requests: list[Recorded]) -> list[str | None]:
    return [r.header("webhook-id") for r in requests]


async def test_a_sample_stay_reaches_two_targets_as_their_topic_filters_say(temporal_env, tmp_path):
    stay = [unique(sample(name)) for name in STAY]
    pms_secret, crm_secret = secret("pms"), secret("crm")
    with (
        FakeService(Reply(204), verifier(pms_secret)) as pms,
        FakeService(Reply(200, {"ok": True}), verifier(crm_secret)) as crm,
    ):
        path = targets_file(
            tmp_path,
            {
                "name": "pms",
                "url": f"{pms.url}/hooks",
                "topics": ["RESERVATION_*"],
                "secret": pms_secret,
            },
            {
                "name": "crm",
                "url": f"{crm.url}/in",
                "topics": ["PROFILE_UPDATED", "MESSAGE_*"],
                "secret": crm_secret,
                "headers": {"X-Tenant": "hotel-zurich"},
            },
        )
        outcomes, alerts = await forward(temporal_env, tmp_path, stay, path, record="signed")

    reservations = [e for e in stay if e["topic"].startswith("RESERVATION_")]
    crm_topics = ("PROFILE_UPDATED", "MESSAGE_RECEIVED")
    # Each target got exactly its topics, once each, every request verified (2xx).
    assert ids(pms.requests) == [e["id"] for e in reservations]
    assert ids(crm.requests) == [e["id"] for e in stay if e["topic"] in crm_topics]
    assert all(r.status in (200, 204) for r in pms.requests + crm.requests)
    assert [r.json()["objectId"] for r in pms.requests] == [e["objectId"] for e in reservations]
    assert {r.json()["topic"] for r in pms.requests} == {e["topic"] for e in reservations}
    assert all(r.header("X-Tenant") == "hotel-zurich" for r in crm.requests)
    assert all(r.header("X-Tenant") is None for r in pms.requests)
    assert all(r.path == "/hooks" for r in pms.requests)
    for event in stay:
        planned = {n: o for n, o in outcomes[event["id"]].items() if n.startswith("forward-")}
        expected = {"forward-pms"} if event in reservations else set()
        if event["topic"] in crm_topics:
            expected = {"forward-crm"}
        assert set(planned) == expected, (event["topic"], planned)
        assert all(o.status == "done" for o in planned.values())
        assert all(o.workflow_id == f"{event['id']}/{n}" for n, o in planned.items())
    assert not alerts


async def test_a_tampered_body_or_another_secret_fails_verification(temporal_env, tmp_path):
    whsec = secret("partner")
    event = unique(sample("reservation_created"))
    with FakeService(Reply(204)) as partner:
        path = targets_file(tmp_path, {"name": "partner", "url": partner.url, "secret": whsec})
        await forward(temporal_env, tmp_path, [event], path)
    [request] = partner.requests
    headers = request.headers
    assert request.header("webhook-id") == event["id"]
    assert request.header("webhook-signature").startswith("v1,")
    assert Webhook(whsec).verify(request.body, headers)["id"] == event["id"]
    tampered = request.body.replace(b"RESERVATION_CREATED", b"RESERVATION_CANCELLED")
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret("someone-else")).verify(request.body, headers)


async def test_a_target_answering_500_three_times_then_200_gets_the_event_again_with_the_same_id(
    temporal_env, tmp_path
):
    whsec = secret("flaky")
    event = unique(sample("task_created"))
    with FakeService(Reply(200), verifier(whsec)) as flaky:
        flaky.fail_next(*[Reply(500, {"message": "internal error"})] * 3)
        path = targets_file(tmp_path, {"name": "flaky", "url": flaky.url, "secret": whsec})
        outcomes, alerts = await forward(temporal_env, tmp_path, [event], path, record="retried")
    assert [r.status for r in flaky.requests] == [500, 500, 500, 200]
    assert ids(flaky.requests) == [event["id"]] * 4
    # Each attempt is signed anew (its own timestamp), and verifies.
    assert all(verifier(whsec)(r.body, r.headers) is None for r in flaky.requests)
    outcome = outcomes[event["id"]]["forward-flaky"]
    assert outcome.status == "done" and outcome.detail == "forwarded (signed) via flaky"
    # Three failures are not an outage (FORWARD_ALERT_AFTER_FAILURES is 5).
    assert not alerts


async def test_a_target_that_keeps_failing_alerts_operations_once_per_outage(
    temporal_env, tmp_path
):
    whsec = secret("down")
    events = [unique(sample("reservation_created")) for _ in range(3)]
    with FakeService(Reply(410, {"error": "gone"})) as down:
        path = targets_file(tmp_path, {"name": "down", "url": down.url, "secret": whsec})
        failed, alerts_down = await forward(
            temporal_env, tmp_path, events, path, FORWARD_ALERT_AFTER_FAILURES="2"
        )
    for event in events:
        outcome = failed[event["id"]]["forward-down"]
        assert outcome.status == "failed" and "410" in outcome.detail
        assert outcome.alert is not None and outcome.alert.startswith("skipped: ")
    [told] = alerts_down
    assert "forward target down is failing" in told and "410" in told


async def test_operations_hear_once_when_a_failing_target_answers_again(temporal_env, tmp_path):
    whsec = secret("back")
    events = [unique(sample("reservation_created")) for _ in range(3)]
    with FakeService(Reply(200)) as back:
        back.fail_next(Reply(410, {"error": "gone"}), Reply(410, {"error": "gone"}))
        path = targets_file(tmp_path, {"name": "back", "url": back.url, "secret": whsec})
        outcomes, alerts = await forward(
            temporal_env, tmp_path, events, path, FORWARD_ALERT_AFTER_FAILURES="2"
        )
    statuses = [outcomes[e["id"]]["forward-back"].status for e in events]
    assert statuses == ["failed", "failed", "done"]
    assert len(alerts) == 2
    assert "forward target back is failing" in alerts[0]
    assert "forward target back answers again" in alerts[1]


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ({"secret": "not-a-whsec-secret"}, "Standard Webhooks secret"),
        ({"secret": "whsec_c2hvcnQ="}, "Standard Webhooks secret"),
        ({"name": "Partner CRM"}, "lower-case letters"),
        ({"url": "ftp://partner.example"}, "http(s) URL"),
        ({"headers": {"webhook-id": "mine"}}, "headers may not set webhook-id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_targets_file_is_refused_with_the_reason_and_no_secret(tmp_path, target, problem):
    good = {"name": "partner", "url": "https://partner.example/in", "secret": secret("x")}
    path = targets_file(tmp_path, {**good, **target})
    with pytest.raises(ValueError) as refused:
        read_targets(path)
    assert "FORWARD_TARGETS" in str(refused.value) and problem in str(refused.value)
    assert secret("x") not in str(refused.value) and "not-a-whsec" not in str(refused.value)


def test_two_targets_of_one_name_are_refused(tmp_path):
    one = {"name": "partner", "url": "https://partner.example/in", "secret": secret("x")}
    with pytest.raises(ValueError, match="unique: partner"):
        read_targets(targets_file(tmp_path, one, one))
