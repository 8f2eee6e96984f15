"""The effects ledger: a send to SendGrid, Slack or Teams that the provider accepted is not
sent again by a retry; the ledger holds keys and references, no guest data; its table
comes from the migrations exactly as storage/schema.py declares it."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities, EmailRequest
from activities.slack import SlackActivities, SlackMessage
from storage.db import open_engine
from storage.effects import EffectsLedger, LedgerUnavailable
from storage.schema import metadata
from tests.fakes import Reply
from tests.helpers import make_settings
from tests.integrations import integrations

GUEST = "ana.silva@example.com"


def welcome(key: str = "evt-1__welcome-email") -> EmailRequest:
    return EmailRequest(key=key, kind="welcome", to=GUEST, data={"guest_name": "Ana Silva"})


def ledger_rows(tmp_path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "intake.db") as db:
        return db.execute("SELECT * FROM effects ORDER BY key").fetchall()


async def test_the_migrations_build_the_schema_the_code_declares(tmp_path):
    engine = await open_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_a_retry_after_sendgrid_accepted_the_email_does_not_send_it_again(tmp_path):
    with integrations() as fakes:
        fakes.sendgrid.default = Reply(202, None, {"X-Message-Id": "sg-1"})
        activities = EmailActivities(make_settings(tmp_path, **fakes.settings()))
        env = ActivityEnvironment()
        first = await env.run(activities.send_email, welcome())
        retry = await env.run(activities.send_email, welcome())
        other = await env.run(activities.send_email, welcome("evt-2__welcome-email"))
    assert len(fakes.sendgrid.requests) == 2
    assert (first.status, first.provider, first.reference) == ("sent", "sendgrid", "sg-1")
    assert retry == first
    assert other.status == "sent"
    rows = ledger_rows(tmp_path)
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("evt-1__welcome-email/sendgrid", "sendgrid", "done", "sg-1", 1),
        ("evt-2__welcome-email/sendgrid", "sendgrid", "done", "sg-1", 1),
    ]
    stored = repr(rows)
    assert GUEST not in stored and "Ana" not in stored


async def test_a_send_sendgrid_refused_is_tried_again_and_counted(tmp_path):
    with integrations() as fakes:
        fakes.sendgrid.fail_next(Reply(503, {"errors": [{"message": "busy"}]}))
        activities = EmailActivities(make_settings(tmp_path, **fakes.settings()))
        env = ActivityEnvironment()
        with pytest.raises(Exception, match="503"):
            await env.run(activities.send_email, welcome())
        assert [r[3] for r in ledger_rows(tmp_path)] == ["started"]
        delivered = await env.run(activities.send_email, welcome())
    assert delivered.status == "sent"
    assert len(fakes.sendgrid.requests) == 2
    assert [(r[3], r[5]) for r in ledger_rows(tmp_path)] == [("done", 2)]


async def test_a_retry_after_teams_failed_posts_to_teams_alone(tmp_path):
    with integrations() as fakes:
        fakes.teams_ops.fail_next(Reply(502))
        settings = make_settings(tmp_path, **fakes.settings(), **fakes.teams())
        activities = SlackActivities(settings)
        # Two runs in one ActivityEnvironment: one workflow step tried twice, without the
        # heartbeat details a real retry would also carry.
        env = ActivityEnvironment()
        message = SlackMessage(channel="operations", text="room 412 is ready")
        with pytest.raises(Exception, match="Teams"):
            await env.run(activities.post_slack, message)
        delivered = await env.run(activities.post_slack, message)
        again = await env.run(activities.post_slack, message)
    assert delivered.status == again.status == "sent"
    assert len(fakes.slack_ops.requests) == 1
    assert len(fakes.teams_ops.requests) == 2
    assert [(r[2], r[3]) for r in ledger_rows(tmp_path)] == [("slack", "done"), ("teams", "done")]
    assert all("room 412" not in repr(r) for r in ledger_rows(tmp_path))


async def test_a_store_that_cannot_open_sends_nothing(tmp_path):
    (tmp_path / "not-a-database").mkdir()
    with integrations() as fakes:
        settings = make_settings(
            tmp_path,
            **fakes.settings(),
            INTAKE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'not-a-database'}",
        )
        with pytest.raises(LedgerUnavailable, match="effects ledger unavailable"):
            await ActivityEnvironment().run(EmailActivities(settings).send_email, welcome())
    assert fakes.sendgrid.requests == []


async def test_the_ledger_keeps_a_long_workflow_id_whole(tmp_path):
    ledger = EffectsLedger(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    key = "e" * 2100 + "/welcome-email/sendgrid"
    try:
        sent = await ledger.once(key, "sendgrid", _reference("sg-9"))
        again = await ledger.once(key, "sendgrid", _reference("never"))
        assert await ledger.state(key) == ("done", "sg-9", 1)
    finally:
        await ledger.close()
    assert (sent.reference, sent.recorded) == ("sg-9", False)
    assert (again.reference, again.recorded) == ("sg-9", True)


def _reference(value: str):
    async def send() -> str:
        return value

    return send
