"""Microsoft Teams beside Slack: the same messages as Adaptive Cards, checked by a fake
Teams that refuses a card breaking the Adaptive Cards schema."""

from __future__ import annotations

import json
from typing import Any

from activities.teams import TeamsNotice, card, message
from tests.conftest import sample
from tests.fakes import Reply, teams_card_problem
from tests.helpers import by_name, running_reactor, unique
from tests.integrations import integrations

# Markdown and a card template function, as a guest could type them.
MARKDOWN = (
    "**urgent** [open the admin console](https://evil.example) {{DATE(2026-01-01T00:00:00Z)}}"
)
ONLY = "housekeeping,guest-journey,activity-log"


def texts(element: Any, kind: str) -> list[str]:
    """Every ``text`` of the card's elements of one type (TextBlock, TextRun...)."""
    found: list[str] = []
    if isinstance(element, dict):
        if element.get("type") == kind and "text" in element:
            found.append(element["text"])
        for value in element.values():
            found += texts(value, kind)
    elif isinstance(element, list):
        for value in element:
            found += texts(value, kind)
    return found


def content(recorded: Any) -> dict[str, Any]:
    [attachment] = recorded.json()["attachments"]
    return dict(attachment["content"])


def facts_of(adaptive_card: dict[str, Any]) -> dict[str, str]:
    """Label -> value of the card's fact rows (a bold label run, then the value run)."""
    rows = {}
    for block in adaptive_card["body"]:
        inlines = block.get("inlines", [])
        if len(inlines) == 2 and inlines[0]["text"].endswith(": "):
            rows[inlines[0]["text"][:-2]] = inlines[1]["text"]
    return rows


def open_url(adaptive_card: dict[str, Any]) -> str:
    [action] = adaptive_card["actions"]
    assert action["type"] == "Action.OpenUrl"
    return str(action["url"])


async def routed(temporal_env, tmp_path, event, **settings):
    """The router's outcomes, by reaction, of one event with only the chat reactions on."""
    settings["REACTOR_DISABLED_REACTIONS"] = ONLY
    async with running_reactor(temporal_env.client, tmp_path, **settings) as reactor:
        assert (await reactor.post(event)).json()["status"] == "accepted"
        return by_name(await reactor.routed(event["id"]))


def test_the_card_keeps_to_the_adaptive_card_schema_and_reads_event_text_as_plain_text():
    notice = TeamsNotice(
        title=f"Eve {MARKDOWN} wrote",
        quote=MARKDOWN,
        facts=[("Reservation", MARKDOWN)],
        workflow_id="evt-1/support-alert",
    )
    body = json.dumps(message(card(notice, "http://ui.example/namespaces/default/workflows/x")))
    assert teams_card_problem(body.encode(), {}) is None
    built = json.loads(body)["attachments"][0]["content"]
    assert built["type"] == "AdaptiveCard" and built["version"] == "1.4"
    # Event text only in TextRuns, which Teams never reads as Markdown or templates.
    assert not texts(built, "TextBlock") and "FactSet" not in body
    assert texts(built, "TextRun").count(MARKDOWN) == 2
    assert f"Eve {MARKDOWN} wrote" in texts(built, "TextRun")


def test_the_fake_teams_refuses_a_card_off_the_schema():
    broken = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "Nope"}]},
            }
        ],
    }
    assert teams_card_problem(json.dumps(broken).encode(), {}) is not None
    assert teams_card_problem(b'{"text": "hi"}', {}) is not None


async def test_a_failed_reaction_a_completed_task_and_a_guest_message_each_make_their_card(
    temporal_env, tmp_path
):
    failing = unique(sample("profile_updated"))
    done = unique(sample("task_completed"))
    guest = unique(sample("message_received"))
    guest["context"] = {**guest["context"], "guestName": "Eve", "text": MARKDOWN}
    with integrations() as fakes:
        fakes.crm.fail_next(Reply(422, {"message": "unknown field preferredLanguage"}))
        settings = {**fakes.settings(), **fakes.teams(), "REACTOR_DISABLED_REACTIONS": ONLY}
        async with running_reactor(temporal_env.client, tmp_path, **settings) as reactor:
            outcomes = {}
            for event in (failing, done, guest):
                assert (await reactor.post(event)).json()["status"] == "accepted"
                outcomes[event["id"]] = by_name(await reactor.routed(event["id"]))
        ops = [content(r) for r in fakes.teams_ops.succeeded()]
        support = [content(r) for r in fakes.teams_support.succeeded()]
        slack_ops = fakes.slack_ops.succeeded()
    assert all(r.status == 202 for r in fakes.teams_ops.requests + fakes.teams_support.requests)

    crm = outcomes[failing["id"]]["crm-sync"]
    assert crm.status == "failed" and crm.alert == "sent"
    [alert] = [c for c in ops if texts(c, "TextRun")[0] == "Reaction crm-sync failed"]
    assert facts_of(alert)["Event"] == failing["id"]
    assert facts_of(alert)["Topic"] == "PROFILE_UPDATED"
    assert "unknown field preferredLanguage" in facts_of(alert)["Error"]
    assert open_url(alert).endswith(f"/workflows/{failing['id']}%2Fcrm-sync")

    notice = outcomes[done["id"]]["team-notice"]
    assert notice.status == "done" and "slack+teams" in notice.detail
    [task] = [c for c in ops if texts(c, "TextRun")[0] == "DEPARTURE_CLEANING is done"]
    assert facts_of(task)["Unit"] == "U-412" and facts_of(task)["Done by"] == "hk-ines"
    assert open_url(task).endswith(f"/workflows/{done['id']}%2Fteam-notice")

    assert outcomes[guest["id"]]["support-alert"].status == "done"
    [words] = support
    assert texts(words, "TextRun")[:2] == ["Eve wrote", MARKDOWN]
    assert open_url(words).endswith(f"/workflows/{guest['id']}%2Fsupport-alert")
    # Slack got the same two operations messages, as before.
    assert len(slack_ops) == 2


async def test_teams_instead_of_slack_is_enough_for_the_team_notice(temporal_env, tmp_path):
    event = unique(sample("task_completed"))
    with integrations() as fakes:
        outcomes = await routed(
            temporal_env,
            tmp_path,
            event,
            **fakes.settings("slack_ops", "slack_support"),
            **fakes.teams(),
        )
        assert len(fakes.teams_ops.succeeded()) == 1
        assert not fakes.slack_ops.requests
    assert outcomes["team-notice"].status == "done"
    assert outcomes["team-notice"].detail == "posted to the operations channel via teams"


async def test_neither_slack_nor_teams_skips_the_team_notice_naming_both(temporal_env, tmp_path):
    event = unique(sample("task_completed"))
    with integrations() as fakes:
        outcomes = await routed(
            temporal_env, tmp_path, event, **fakes.settings("slack_ops", "slack_support")
        )
    assert outcomes["team-notice"].status == "skipped"
    assert outcomes["team-notice"].detail == (
        "not configured: set SLACK_WEBHOOK_URL or TEAMS_WEBHOOK_URL"
    )


async def test_teams_failing_once_is_retried_without_posting_to_slack_twice(temporal_env, tmp_path):
    event = unique(sample("task_completed"))
    with integrations() as fakes:
        fakes.teams_ops.fail_next(Reply(502, {"error": "bad gateway"}))
        outcomes = await routed(temporal_env, tmp_path, event, **fakes.settings(), **fakes.teams())
        assert [r.status for r in fakes.teams_ops.requests] == [502, 202]
        assert len(fakes.slack_ops.requests) == 1
    assert outcomes["team-notice"].status == "done"


async def test_teams_refusing_the_card_fails_the_reaction_at_once(temporal_env, tmp_path):
    event = unique(sample("task_completed"))
    with integrations() as fakes:
        fakes.teams_ops.fail_next(Reply(400, {"error": "Bad payload"}))
        outcomes = await routed(
            temporal_env,
            tmp_path,
            event,
            **fakes.settings("slack_ops", "slack_support"),
            **fakes.teams(),
        )
        # The alert of the failure is a card too (the only channel is Teams).
        cards = [content(r) for r in fakes.teams_ops.succeeded()]
        posted = json.dumps(outcomes["team-notice"].model_dump())
    assert outcomes["team-notice"].status == "failed"
    assert "Teams rejected the card: 400 Bad payload" in outcomes["team-notice"].detail
    assert "secret-ops" not in posted and "/workflows/ops" not in posted
    assert [texts(c, "TextRun")[0] for c in cards] == ["Reaction team-notice failed"]
