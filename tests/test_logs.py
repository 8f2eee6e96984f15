"""Every log line about an event names the event and the workflow it comes from."""

from __future__ import annotations

import dataclasses
import json
import logging

from temporalio.testing import ActivityEnvironment

from core.logging import JsonFormatter, activity_fields
from tests.conftest import sample
from tests.fakes import Reply
from tests.helpers import running_reactor, unique
from tests.integrations import integrations


def fields_in(workflow_id: str, workflow_type: str) -> dict:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, workflow_type=workflow_type)
    return env.run(lambda: activity_fields(kind="x"))["fields"]


def test_activity_fields_name_the_workflow_and_its_event():
    assert fields_in("e1/crm-sync", "CrmSync") == {
        "kind": "x",
        "workflow_id": "e1/crm-sync",
        "event_id": "e1",
    }
    assert fields_in("e2", "EventRouter")["event_id"] == "e2"
    assert "event_id" not in fields_in("housekeeping-T1", "HousekeepingAssignment")
    assert activity_fields(kind="x") == {"fields": {"kind": "x"}}  # outside an activity


def test_workflow_logger_lines_carry_workflow_and_event_in_json():
    record = logging.LogRecord("temporalio.workflow", logging.WARNING, "", 0, "failed", (), None)
    record.temporal_workflow = {"workflow_id": "e3", "workflow_type": "EventRouter"}
    line = json.loads(JsonFormatter().format(record))
    assert (line["workflow_id"], line["event_id"]) == ("e3", "e3")
    record = logging.LogRecord("temporalio.activity", logging.WARNING, "", 0, "failed", (), None)
    record.temporal_activity = {"workflow_id": "e4/crm-sync", "workflow_type": "CrmSync"}
    line = json.loads(JsonFormatter().format(record))
    assert (line["workflow_id"], line["event_id"]) == ("e4/crm-sync", "e4")


async def test_an_events_log_lines_name_it(temporal_env, tmp_path, caplog):
    event = unique(sample("profile_updated"))
    caplog.set_level(logging.INFO)
    with integrations() as fakes:
        fakes.crm.fail_next(Reply(422, {"message": "unknown field"}))
        async with running_reactor(temporal_env.client, tmp_path, **fakes.settings()) as reactor:
            await reactor.post(event)
            await reactor.routed(event["id"])
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    about = [line for line in lines if event["id"] in json.dumps(line)]
    by_message = {line["msg"].split(" (")[0]: line for line in about}
    assert {"webhook", "event forwarded", "slack message posted", "reaction crm-sync failed"} <= (
        set(by_message)
    )
    for line in about:
        assert line.get("event_id") == event["id"], line
        assert line.get("workflow_id", "").startswith(event["id"]), line
    assert by_message["event forwarded"]["workflow_id"] == f"{event['id']}/activity-log"
    assert by_message["slack message posted"]["workflow_id"] == event["id"]  # the alert
