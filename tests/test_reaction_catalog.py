"""Each integration's failure policy, end to end: webhook -> router -> reaction -> fake."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.conftest import sample
from tests.fakes import Reply
from tests.helpers import by_name, running_reactor, shifted, unique, weeks_ahead
from tests.integrations import integrations


@dataclass(frozen=True)
class Case:
    integration: str  # which fake the reaction's effect lands on
    sample: str
    reaction: str
    provider: str  # how error messages name it
    rejection: Reply
    setting: str  # what "not configured" leaves out
    variable: str  # what the skip reason names


CASES = [
    Case(
        "sendgrid",
        "reservation_created",
        "booking-confirmation",
        "SendGrid",
        Reply(400, {"errors": [{"message": "The from address does not match a verified Sender"}]}),
        "",  # email falls back to the outbox: it is never "not configured"
        "",
    ),
    Case(
        "slack_ops",
        "task_completed",
        "team-notice",
        "Slack",
        Reply(404, "no_service"),
        "slack_ops",
        "SLACK_WEBHOOK_URL",
    ),
    Case(
        "slack_support",
        "message_received",
        "support-alert",
        "Slack",
        Reply(400, "invalid_payload"),
        "slack_support,slack_ops,support_email",
        "SUPPORT_EMAIL",
    ),
    Case(
        "crm",
        "profile_updated",
        "crm-sync",
        "CRM",
        Reply(422, {"message": "unknown field preferredLanguage"}),
        "crm",
        "CRM_API_URL",
    ),
    Case(
        "event_log",
        "task_created",
        "activity-log",
        "activity log",
        Reply(403, {"error": "token expired"}),
        "event_log",
        "EVENT_LOG_URL",
    ),
]
IDS = [c.reaction for c in CASES]
# The sample profile has no running journey: profile-refresh has nothing to do.
NOTHING_TO_DO = {"profile-refresh": "no running journey for this profile"}


def all_done(outcomes: dict) -> bool:
    """Every reaction succeeded, or had nothing to do here (NOTHING_TO_DO)."""
    return all(
        o.status == "done" or (o.status == "skipped" and NOTHING_TO_DO.get(name) == o.detail)
        for name, o in outcomes.items()
    )


async def route(temporal_env, tmp_path, fakes, event, *without, **overrides):
    # The sample stay lies ahead whenever this runs: no journey message falls due
    # during a test and adds an email to the counts.
    event = shifted(event, weeks_ahead())
    settings = {**fakes.settings(*without), **overrides}
    async with running_reactor(temporal_env.client, tmp_path, **settings) as reactor:
        answer = await reactor.post(event)
        assert answer.json()["status"] == "accepted"
        return by_name(await reactor.routed(event["id"])), reactor


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_success_has_exactly_one_effect(temporal_env, tmp_path, case):
    with integrations() as fakes:
        outcomes, _ = await route(temporal_env, tmp_path, fakes, unique(sample(case.sample)))
        fake = fakes.all()[case.integration]
    assert outcomes[case.reaction].status == "done", outcomes[case.reaction]
    assert len(fake.succeeded()) == 1
    assert all_done(outcomes), outcomes


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_500_then_success_has_exactly_one_effect(temporal_env, tmp_path, case):
    with integrations() as fakes:
        fake = fakes.all()[case.integration]
        fake.fail_next(Reply(500, {"message": "internal error"}))
        outcomes, _ = await route(temporal_env, tmp_path, fakes, unique(sample(case.sample)))
    assert outcomes[case.reaction].status == "done"
    assert [r.status for r in fake.requests][0] == 500
    assert len(fake.succeeded()) == 1
    assert len(fake.requests) == 2


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_429_waits_for_retry_after(temporal_env, tmp_path, case):
    with integrations() as fakes:
        fake = fakes.all()[case.integration]
        fake.fail_next(Reply(429, {"message": "slow down"}, {"Retry-After": "3"}))
        outcomes, _ = await route(temporal_env, tmp_path, fakes, unique(sample(case.sample)))
    assert outcomes[case.reaction].status == "done"
    assert [r.status for r in fake.requests][0] == 429
    assert len(fake.succeeded()) == 1
    # Honoured, not the default 1 s backoff: the retry came no sooner than asked.
    assert fake.requests[1].at - fake.requests[0].at >= 2.9


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_4xx_fails_the_reaction_alerts_operations_and_spares_siblings(
    temporal_env, tmp_path, case
):
    event = unique(sample(case.sample))
    with integrations() as fakes:
        fake = fakes.all()[case.integration]
        fake.fail_next(case.rejection)
        outcomes, reactor = await route(temporal_env, tmp_path, fakes, event)
        child_id = f"{event['id']}/{case.reaction}"
        child = await reactor.client.get_workflow_handle(child_id).describe()
        alerts = [r.json() for r in fakes.slack_ops.succeeded() if "failed" in r.json()["text"]]

    failed = outcomes[case.reaction]
    assert failed.status == "failed"
    assert case.provider in failed.detail
    assert str(case.rejection.status) in failed.detail
    expected_text = case.rejection.body
    if isinstance(expected_text, dict):
        expected_text = (
            expected_text.get("message")
            or expected_text.get("error")
            or expected_text["errors"][0]["message"]
        )
    assert expected_text in failed.detail
    assert failed.alert == "sent"
    assert child.status == WorkflowExecutionStatus.FAILED
    # Not retried: one request reached the provider for this reaction.
    assert fake.requests[0].status == case.rejection.status
    [alert] = alerts
    assert event["id"] in alert["text"] and case.reaction in alert["text"]
    assert any("open in Temporal" in str(block) for block in alert["blocks"])
    siblings = {name: o for name, o in outcomes.items() if name != case.reaction}
    assert all_done(siblings), siblings


@pytest.mark.parametrize("case", [c for c in CASES if c.setting], ids=lambda c: c.reaction)
async def test_not_configured_is_skipped_with_the_reason(temporal_env, tmp_path, case):
    with integrations() as fakes:
        outcomes, _ = await route(
            temporal_env, tmp_path, fakes, unique(sample(case.sample)), *case.setting.split(",")
        )
        fake = fakes.all()[case.integration]
    skipped = outcomes[case.reaction]
    assert skipped.status == "skipped"
    assert case.variable in skipped.detail
    assert skipped.workflow_id == ""  # nothing was started for it
    assert fake.requests == []


async def test_email_without_sendgrid_goes_to_the_outbox(temporal_env, tmp_path):
    with integrations() as fakes:
        outcomes, _ = await route(
            temporal_env, tmp_path, fakes, unique(sample("reservation_created")), "sendgrid"
        )
        assert fakes.sendgrid.requests == []
    assert outcomes["booking-confirmation"].detail == (
        "booking_confirmation email via outbox (guest from the event)"
    )
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


async def test_support_alert_with_only_email_configured(temporal_env, tmp_path):
    with integrations() as fakes:
        outcomes, _ = await route(
            temporal_env,
            tmp_path,
            fakes,
            unique(sample("message_received")),
            "slack_ops",
            "slack_support",
        )
        emails = [r.json() for r in fakes.sendgrid.succeeded()]
    alert = outcomes["support-alert"]
    assert alert.status == "done"
    assert "slack: skipped" in alert.detail and "email: sent" in alert.detail
    assert emails[0]["personalizations"][0]["to"] == [{"email": "support@hotel.example"}]


async def test_failing_alert_does_not_hide_the_failure(temporal_env, tmp_path):
    event = unique(sample("profile_updated"))
    with integrations() as fakes:
        fakes.crm.fail_next(Reply(400, {"message": "bad profile"}))
        fakes.slack_ops.default = Reply(403, "invalid_token")
        outcomes, _ = await route(temporal_env, tmp_path, fakes, event)
    crm = outcomes["crm-sync"]
    assert crm.status == "failed"
    assert "CRM rejected the profile update: 400 bad profile" == crm.detail
    assert crm.alert is not None and crm.alert.startswith("failed: Slack rejected")


async def test_reactions_can_be_switched_off(temporal_env, tmp_path):
    with integrations() as fakes:
        outcomes, _ = await route(
            temporal_env,
            tmp_path,
            fakes,
            unique(sample("task_completed")),
            REACTOR_DISABLED_REACTIONS="team-notice, crm-sync",
        )
        assert fakes.slack_ops.requests == []
    assert outcomes["team-notice"].status == "skipped"
    assert "REACTOR_DISABLED_REACTIONS" in outcomes["team-notice"].detail
    assert outcomes["activity-log"].status == "done"


async def test_activity_log_forwards_only_the_configured_topics(temporal_env, tmp_path):
    with integrations() as fakes:
        created, _ = await route(
            temporal_env,
            tmp_path,
            fakes,
            unique(sample("reservation_created")),
            EVENT_LOG_TOPICS="TASK_CREATED,TASK_COMPLETED",
        )
        task, _ = await route(
            temporal_env,
            tmp_path,
            fakes,
            unique(sample("task_created")),
            EVENT_LOG_TOPICS="TASK_CREATED,TASK_COMPLETED",
        )
        forwarded = [r.json()["topic"] for r in fakes.event_log.requests]
    assert "activity-log" not in created
    assert task["activity-log"].status == "done"
    assert forwarded == ["TASK_CREATED"]
