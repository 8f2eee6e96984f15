"""The operator commands (send, status, failed, replay) against a real API on a real port,
a worker and the Temporal dev server. The CLI runs in a thread (it has its own event loop),
while the API and the worker serve from the test's loop."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
from temporalio.client import Client, WorkflowExecutionStatus
from typer.testing import CliRunner, Result

import cli
from api.app import create_app
from core.links import list_url, workflow_url
from core.settings import Settings
from tests.conftest import sample
from tests.fakes import Reply
from tests.helpers import (
    SECRET,
    WAIT_SECONDS,
    make_settings,
    query_until,
    unique,
    until,
    worker_for,
)
from tests.integrations import integrations
from workflows.housekeeping import AssignmentState

ROOT = Path(__file__).resolve().parent.parent
UI = "http://ui.test:8233"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Live:
    """A reactor serving on a real port, and the environment the CLI is run with."""

    client: Client
    settings: Settings
    url: str

    def env(self, **overrides: str) -> dict[str, str]:
        values = {
            "TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": self.client.namespace,
            "REACTOR_TASK_QUEUE": self.settings.task_queue,
            "WEBHOOK_SECRET": SECRET,
            "TEMPORAL_UI_URL": UI,
            "REACTOR_API_URL": self.url,
        }
        return {**values, **overrides}

    async def reactor(self, *args: str, input: str | None = None, **env: str) -> Result:
        """`reactor ARGS`, in a thread: its asyncio.run must not meet the test's loop."""
        runner = CliRunner()
        return await asyncio.to_thread(
            runner.invoke, cli.app, list(args), input=input, env=self.env(**env)
        )

    async def json(self, *args: str, **env: str) -> Any:
        result = await self.reactor(*args, "--json", **env)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def link(self, workflow_id: str) -> str:
        return workflow_url(UI, self.client.namespace, workflow_id)


@asynccontextmanager
async def live_reactor(client: Client, tmp: Path, **overrides: Any) -> AsyncIterator[Live]:
    """The API under uvicorn on a free port, and a worker, both on the test's loop."""
    settings = make_settings(tmp, **overrides)
    app = create_app(settings, temporal_client=client)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not server.started:
            assert time.monotonic() < deadline and not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.02)
        async with worker_for(client, settings):
            yield Live(client, settings, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving
        listener.close()


def write_event(tmp: Path, event: dict[str, Any]) -> str:
    path = tmp / f"{event['id']}.json"
    path.write_text(json.dumps(event))
    return str(path)


# --- send ----------------------------------------------------------------------------------


async def test_send_a_file_then_again_is_a_duplicate(temporal_env, tmp_path):
    event = unique(sample("reservation_checked_in"))
    path = write_event(tmp_path, event)
    async with live_reactor(temporal_env.client, tmp_path) as live:
        first = await live.reactor("send", path)
        again = await live.json("send", path)
        piped = await live.json("send", "-", input=json.dumps(unique(event)))
        await temporal_env.client.get_workflow_handle(event["id"]).result()

    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith(f"accepted  event {event['id']}  run ")
    assert live.link(event["id"]) in first.stdout
    assert again["status"] == "duplicate"
    assert again["eventId"] == again["workflowId"] == event["id"]
    assert piped["status"] == "accepted" and piped["eventId"] != event["id"]


async def test_send_a_sample_by_topic_and_object(temporal_env, tmp_path):
    async with live_reactor(temporal_env.client, tmp_path) as live:
        answer = await live.json("send", "--topic", "PROFILE_UPDATED", "--object-id", "prof-7")
        refused = await live.reactor("send", "--topic", "RESERVATION_CONDITION_UPDATE")
        other = await live.json("send", "--topic", "BRAND_NEW_TOPIC", "--force")
        router = temporal_env.client.get_workflow_handle(answer["eventId"])
        described = await router.describe()

    assert refused.exit_code == 2 and refused.stdout == ""
    assert "'RESERVATION_CONDITION_UPDATE' is not a documented topic" in refused.stderr
    assert "did you mean RESERVATION_CONDITION_UPDATED" in refused.stderr
    assert "--force" in refused.stderr
    assert answer["status"] == other["status"] == "accepted"
    uuid.UUID(answer["eventId"])  # a fresh id, not the sample's
    assert answer["eventId"] != sample("profile_updated")["id"]
    attributes = {k: v for k, v in described.search_attributes.items() if k != "BuildIds"}
    assert attributes["Topic"] == ["PROFILE_UPDATED"]
    assert attributes["ObjectId"] == ["prof-7"]
    assert attributes["ObjectType"] == ["PROFILE"]  # the profile sample, not another one
    brand_new = await temporal_env.client.get_workflow_handle(other["eventId"]).describe()
    assert brand_new.search_attributes["Topic"] == ["BRAND_NEW_TOPIC"]


async def test_send_prints_the_api_error_and_exits_1(temporal_env, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    async with live_reactor(temporal_env.client, tmp_path) as live:
        wrong = await live.reactor("send", "--topic", "PROFILE_UPDATED", "--secret", "x" * 20)
        invalid = await live.reactor("send", str(broken))
        unsecret = await live.reactor("send", "--topic", "PROFILE_UPDATED", WEBHOOK_SECRET="")
        neither = await live.reactor("send")

    assert wrong.exit_code == 1
    assert json.loads(wrong.stdout)["error"]["code"] == "unauthorized"
    assert "401" in wrong.stderr
    assert invalid.exit_code == 1
    assert json.loads(invalid.stdout)["error"]["code"] == "invalid_json"
    assert unsecret.exit_code == 2 and "WEBHOOK_SECRET" in unsecret.stderr
    assert neither.exit_code == 2 and "--topic" in neither.stderr


# --- status, failed, replay ------------------------------------------------------------------


async def test_status_shows_a_reaction_skipped_without_a_run(temporal_env, tmp_path):
    # No EVENT_LOG_URL: the router lists the activity log as skipped and starts nothing.
    event = unique(sample("reservation_checked_in"))
    async with live_reactor(temporal_env.client, tmp_path) as live:
        assert (await live.json("send", write_event(tmp_path, event)))["status"] == "accepted"
        await temporal_env.client.get_workflow_handle(event["id"]).result()
        shown = await live.reactor("status", event["id"])
        status = await live.json("status", event["id"])

    assert shown.exit_code == 0, shown.stderr
    assert re.search(r"^activity-log +skipped +- .* -$", shown.stdout, re.MULTILINE), shown.stdout
    assert "activity-log: not configured: set EVENT_LOG_URL" in shown.stdout
    skipped = {r["reaction"]: r for r in status["reactions"]}["activity-log"]
    assert skipped["execution"] is None and skipped["link"] is None


async def test_a_failed_reaction_is_shown_listed_and_replayed_and_the_event_stays_a_duplicate(
    temporal_env, tmp_path
):
    event = unique(sample("profile_updated"))
    path = write_event(tmp_path, event)
    failed_id, done_id = f"{event['id']}/crm-sync", f"{event['id']}/activity-log"
    with integrations() as fakes:
        # The CRM refuses once, for good (a 4xx); its default answer afterwards is 200.
        fakes.crm.fail_next(Reply(422, {"message": "unknown field preferredLanguage"}))
        async with live_reactor(temporal_env.client, tmp_path, **fakes.settings()) as live:
            assert (await live.json("send", path))["status"] == "accepted"
            await temporal_env.client.get_workflow_handle(event["id"]).result()

            shown = await live.reactor("status", event["id"])
            status = await live.json("status", event["id"])

            async def listed() -> list[dict[str, Any]]:
                found = await live.json("failed", "--since", "1h", "--topic", "PROFILE_UPDATED")
                return [r for r in found["failed"] if r["event_id"] == event["id"]]

            failed_rows = await until(listed, "the failed reaction listed", pause=0.2)
            failed_text = await live.reactor("failed", "--since", "1h")

            replayed = await live.json("replay", event["id"])
            after = await live.json("status", event["id"])
            latest = await temporal_env.client.get_workflow_handle(failed_id).describe()
            redelivered = await live.json("send", path)
            still_listed = await listed()
            nothing_left = await live.reactor("replay", event["id"])

    # status: both reactions, with the router's outcome, the error, the alert and links
    assert shown.exit_code == 0, shown.stderr
    assert f"event {event['id']}  PROFILE_UPDATED  router COMPLETED" in shown.stdout
    for workflow_id in (event["id"], failed_id, done_id):
        assert live.link(workflow_id) in shown.stdout
    assert re.search(r"^crm-sync +failed +FAILED +sent", shown.stdout, re.MULTILINE)
    assert re.search(r"^activity-log +done +COMPLETED", shown.stdout, re.MULTILINE)
    assert "crm-sync: CRM rejected" in shown.stdout
    reactions = {r["reaction"]: r for r in status["reactions"]}
    assert status["status"] == "COMPLETED" and status["topic"] == "PROFILE_UPDATED"
    assert reactions["crm-sync"]["outcome"] == "failed"
    assert reactions["crm-sync"]["execution"] == "FAILED"
    assert "422" in reactions["crm-sync"]["detail"]
    assert reactions["crm-sync"]["alert"] == "sent"
    assert reactions["crm-sync"]["link"] == live.link(failed_id)
    assert reactions["activity-log"]["outcome"] == "done"
    assert reactions["activity-log"]["execution"] == "COMPLETED"

    # failed: the reaction, its error, its link, and the UI link of the list
    assert len(failed_rows) == 1, failed_rows
    row = failed_rows[0]
    assert (row["reaction"], row["topic"], row["workflow_type"]) == (
        "crm-sync",
        "PROFILE_UPDATED",
        "CrmSync",
    )
    assert row["error"] == status["reactions"][0]["detail"]
    assert row["link"] == live.link(failed_id)
    assert failed_text.exit_code == 0
    assert event["id"] in failed_text.stdout and live.link(failed_id) in failed_text.stdout
    ui_list = re.search(r"in the Temporal UI: (\S+)", failed_text.stdout)
    assert ui_list and ui_list[1].startswith(f"{UI}/namespaces/default/workflows?query=")
    assert "ExecutionStatus%20%3D%20%22Failed%22" in ui_list[1]

    # replay: only the failed reaction, which now succeeds in a new run
    assert [r["reaction"] for r in replayed["replays"]] == ["crm-sync"]
    assert replayed["replays"][0]["result"] == "done"
    assert replayed["summary"]["succeeded"] == 1 and replayed["summary"]["failed_again"] == 0
    assert len(fakes.crm.succeeded()) == 1
    assert latest.status == WorkflowExecutionStatus.COMPLETED
    assert latest.run_id == replayed["replays"][0]["run_id"] != row["run_id"]
    assert latest.parent_id is None  # not a child of the router: the router was not touched
    assert latest.search_attributes["Topic"] == ["PROFILE_UPDATED"]
    now = {r["reaction"]: r for r in after["reactions"]}
    assert now["crm-sync"]["execution"] == "COMPLETED" and now["crm-sync"]["replayed"]
    assert now["crm-sync"]["outcome"] == "failed"  # the router's result stays as it was
    assert after["run_id"] == status["run_id"]

    # the publisher's redelivery is still a duplicate; nothing is left to replay
    assert redelivered["status"] == "duplicate" and redelivered["runId"] == status["run_id"]
    assert still_listed == []
    assert nothing_left.exit_code == 0 and "nothing to replay" in nothing_left.stdout


async def test_replay_a_named_reaction_and_all_failed_in_a_window(temporal_env, tmp_path):
    # A topic of this test alone: only the activity log reacts to it, and --topic keeps
    # --all-failed away from the failures of other tests.
    topic = f"TEST_REPLAY_{uuid.uuid4().hex[:8].upper()}"
    events = [unique(sample("reservation_created"), topic=topic) for _ in range(2)]
    with integrations() as fakes:
        for _ in events:
            fakes.event_log.fail_next(Reply(403, {"error": "token expired"}))
        async with live_reactor(temporal_env.client, tmp_path, **fakes.settings()) as live:
            for event in events:
                assert (await live.json("send", write_event(tmp_path, event)))["status"]
                await temporal_env.client.get_workflow_handle(event["id"]).result()

            async def both_failed() -> bool:
                found = await live.json("failed", "--since", "10m", "--topic", topic)
                return len(found["failed"]) == 2

            await until(both_failed, "both failures listed", pause=0.2)
            everything = await live.json(
                "replay", "--all-failed", "--since", "10m", "--topic", topic
            )
            text = await live.reactor("replay", events[0]["id"], "--reaction", "activity-log")
            again = await live.reactor("replay", events[0]["id"])

    assert everything["summary"] == {
        "replayed": 2,
        "succeeded": 2,
        "failed_again": 0,
        "started": 0,
        "not_replayed": 0,
    }
    assert {r["event_id"] for r in everything["replays"]} == {e["id"] for e in events}
    # --reaction runs a completed reaction once more (ALLOW_DUPLICATE)
    assert text.exit_code == 0, text.stderr
    assert re.search(r"activity-log +COMPLETED +done", text.stdout)
    assert "replayed 1: 1 succeeded, 0 failed again" in text.stdout
    assert "router's result stays as it was" in text.stdout
    assert again.exit_code == 0 and "nothing to replay" in again.stdout
    assert len(fakes.event_log.succeeded()) == 3


async def test_a_replay_that_fails_again_exits_1(temporal_env, tmp_path):
    event = unique(sample("profile_updated"))
    with integrations() as fakes:
        rejection = Reply(422, {"message": "unknown field preferredLanguage"})
        fakes.crm.fail_next(rejection, rejection)
        async with live_reactor(
            temporal_env.client, tmp_path, **fakes.settings("event_log")
        ) as live:
            await live.json("send", write_event(tmp_path, event))
            await temporal_env.client.get_workflow_handle(event["id"]).result()
            result = await live.reactor("replay", event["id"])

    assert result.exit_code == 1
    assert re.search(r"crm-sync +FAILED +failed +CRM rejected", result.stdout)
    assert "replayed 1: 0 succeeded, 1 failed again" in result.stdout


async def test_unknown_events_are_told_apart(temporal_env, tmp_path):
    unknown = str(uuid.uuid4())
    async with live_reactor(temporal_env.client, tmp_path) as live:
        status = await live.reactor("status", unknown)
        replay = await live.reactor("replay", unknown)
        bad = await live.reactor("status", 'not"an-id')
        since = await live.reactor("failed", "--since", "yesterday-ish")

    assert status.exit_code == 1 and f"no event {unknown}" in status.stderr
    assert len(status.stderr.strip().splitlines()) == 1
    assert replay.exit_code == 1 and f"no event {unknown}" in replay.stderr
    assert bad.exit_code == 2 and "not an event id" in bad.stderr
    assert since.exit_code == 2 and "--since" in since.stderr


async def test_unreachable_api_and_temporal_are_one_line_and_exit_2(temporal_env, tmp_path):
    closed = f"127.0.0.1:{free_port()}"
    live = Live(temporal_env.client, make_settings(tmp_path), f"http://{closed}")
    results = {
        "send": await live.reactor("send", "--topic", "PROFILE_UPDATED"),
        "status": await live.reactor("status", "some-event", TEMPORAL_ADDRESS=closed),
        "failed": await live.reactor("failed", TEMPORAL_ADDRESS=closed),
        "replay": await live.reactor("replay", "--all-failed", TEMPORAL_ADDRESS=closed),
        "check-replay": await live.reactor("check-replay", TEMPORAL_ADDRESS=closed),
    }

    for command, result in results.items():
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stdout == ""
    assert f"cannot reach the API at http://{closed}" in results["send"].stderr
    for command in ("status", "failed", "replay", "check-replay"):
        assert f"cannot reach Temporal at {closed}" in results[command].stderr


# --- the README's links --------------------------------------------------------------------


def readme_filters() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Watching executions in the Temporal UI", 1)[1].split("\n## ")[0]
    return re.findall(r"^\| [^|]+ \| `([^`]+)` \| \[open\]\(([^)]+)\) \|$", section, re.M)


def test_readme_ui_links_are_what_the_cli_generates():
    rows = readme_filters()
    queries = [query for query, _ in rows]
    assert 'ObjectId = "RES-48213-1" OR ReservationId = "RES-48213-1"' in queries
    assert any("CloseTime >" in q and 'ExecutionStatus = "Failed"' in q for q in queries)
    assert (
        'WorkflowType = "HousekeepingAssignment" AND ExecutionStatus = "Running" '
        'AND Housekeeper = "hk-ines"'
    ) in queries
    for query, link in rows:
        assert link == list_url("http://127.0.0.1:8233", "default", query), query


async def test_readme_filters_are_valid_visibility_queries(temporal_env):
    for query, _ in readme_filters():
        await temporal_env.client.count_workflows(query)  # raises on a query it cannot run
    now = cli.parse_since("24h")
    await temporal_env.client.count_workflows(cli.failed_query(now, "PROFILE_UPDATED"))
    await temporal_env.client.count_workflows(cli.reactions_query("some-event"))


def test_since_takes_durations_and_instants():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert cli.parse_since("24h", now) == now - timedelta(hours=24)
    assert cli.parse_since("1h30m", now) == now - timedelta(minutes=90)
    assert cli.parse_since("7d", now) == now - timedelta(days=7)
    assert cli.parse_since("2026-12-01T08:00:00", now) == datetime(2026, 12, 1, 8, tzinfo=UTC)


async def test_status_says_what_a_housekeeping_assignment_waits_for(temporal_env, tmp_path, clock):
    # The real clock: every shift of the roster covers now (day) or excludes it (night).
    now = datetime.now(UTC)
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        "timezone: Europe/Zurich\nstaff:\n"
        f"  - {{id: hk-ines, name: Ines, email: ines@hotel.example, floors: [4], "
        f'shift: "{clock.shift(now, "Europe/Zurich")}"}}\n'
    )
    event = unique(sample("task_created"))
    async with live_reactor(temporal_env.client, tmp_path, HOUSEKEEPING_ROSTER=str(roster)) as live:
        assert (await live.json("send", write_event(tmp_path, event)))["status"] == "accepted"
        await temporal_env.client.get_workflow_handle(event["id"]).result()
        handle = temporal_env.client.get_workflow_handle(f"housekeeping-{event['objectId']}")
        wanted = "waiting_for_shift" if clock.night else "assigned"
        await query_until(handle, AssignmentState, lambda s: s.status == wanted, wanted)
        shown = await live.reactor("status", event["id"])
        await handle.terminate("test over")

    assert shown.exit_code == 0, shown.stderr
    [line] = [x.strip() for x in shown.stdout.splitlines() if x.strip().startswith("now:")]
    if clock.night:
        begins = clock.shift_begins(now).astimezone(ZoneInfo("Europe/Zurich"))
        assert line == (
            f"now: housekeeping-{event['objectId']} waiting_for_shift: waits for the "
            f"{clock.shift(now, 'Europe/Zurich')} shift of hk-ines (Europe/Zurich), "
            f"until {begins.isoformat()}"
        )
    else:
        assert line.startswith(f"now: housekeeping-{event['objectId']} assigned: hk-ines, due by ")
