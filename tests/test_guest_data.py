"""Guest data in a whole sample stay: encrypted in every history, in no log line.

The stay runs once (module fixture) with every log at DEBUG, while two providers reject
a request quoting the guest (as SendGrid and CRMs do); the tests then read the raw
histories of every execution it made, and every log line it wrote.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from core.codec import ENCODING, KEY_ID_METADATA
from core.logging import JsonFormatter, TextFormatter
from tests.conftest import DATA_CONVERTER
from tests.fakes import Reply
from tests.helpers import running_reactor, weeks_ahead
from tests.integrations import integrations
from tests.test_sample_stay import ROSTER, STAY, stay_events

# Every personal value the sample stay sends (names, emails, phones, a message text),
# as bytes long enough never to turn up in ciphertext by chance.
PERSONAL = [
    "Ana Silva",
    "Silva",
    '"Ana"',
    "ana.silva@example.com",
    "ana.silva",
    "+41791112233",
    "41791112233",
    "Could we get two extra pillows in room 412?",
    "extra pillows",
]


MARKER_BOOKKEEPING = {"data", "patch-data"}


@dataclass
class Stay:
    client: Client
    events: dict[str, dict[str, Any]]
    workflow_ids: set[str] = field(default_factory=set)
    log_lines: list[str] = field(default_factory=list)
    outbox: Path | None = None


class Everything(logging.Handler):
    """Every record, as both formatters write it (message, fields, extras, traceback)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.formatters = (JsonFormatter(), TextFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        for formatter in self.formatters:
            self.lines.append(formatter.format(record))
        self.lines.append(repr({k: v for k, v in vars(record).items() if k != "msg"}))


@pytest.fixture(scope="module")
async def stay(temporal_env, tmp_path_factory) -> AsyncIterator[Stay]:
    tmp = tmp_path_factory.mktemp("stay")
    roster = yaml.safe_load(ROSTER.read_text())
    for person in roster["staff"]:
        person["shift"] = "00:00-23:59"  # pinned: someone is always on shift
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    events = stay_events(weeks_ahead())
    result = Stay(temporal_env.client, events)
    root = logging.getLogger()
    handler = Everything(result.log_lines)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with integrations() as fakes:
            # Providers that quote the guest in their refusals.
            fakes.crm.fail_next(
                Reply(422, {"message": "ana.silva@example.com (+41791112233) is taken"})
            )
            fakes.sendgrid.fail_next(
                Reply(400, {"errors": [{"message": "Ana Silva <ana.silva@example.com> bounced"}]})
            )
            settings = {
                **fakes.settings(),
                "HOUSEKEEPING_ROSTER": str(tmp / "roster.yaml"),
                "JOURNEY_QUIET_HOURS": "",
            }
            async with running_reactor(temporal_env.client, tmp, **settings) as reactor:
                for name in STAY:
                    answer = await reactor.post(events[name])
                    assert answer.json()["status"] == "accepted", name
                    routed = await reactor.routed(events[name]["id"])
                    result.workflow_ids.add(events[name]["id"])
                    result.workflow_ids |= {
                        o.workflow_id for o in routed.reactions if o.workflow_id
                    }
                result.outbox = reactor.settings.email_outbox_dir
        result.workflow_ids |= {
            f"journey-{events['reservation_created']['objectId']}",
            f"journey-{events['reservation_cancelled']['objectId']}",
            f"housekeeping-{events['task_created']['objectId']}",
        }
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    yield result


def found_in(text: bytes | str) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode()
    return [value for value in PERSONAL if value.encode() in data]


async def test_no_guest_data_in_plain_text_in_the_histories_of_a_sample_stay(stay: Stay):
    decoded_somewhere: set[str] = set()
    for workflow_id in sorted(stay.workflow_ids):
        history = await stay.client.get_workflow_handle(workflow_id).fetch_history()
        raw = b"".join(event.SerializeToString() for event in history.events)
        # The bytes Temporal stores: its ids are there in plain text, guest data is not.
        assert workflow_id.split("/")[0].encode() in raw
        assert found_in(raw) == [], workflow_id
        # ...and the guest data is there, encrypted: the codec gives it back.
        for event in history.events:
            for payload in payloads_of(event):
                assert payload.metadata["encoding"] == ENCODING, workflow_id
                assert payload.metadata[KEY_ID_METADATA] == b"test2"
                [plain] = await DATA_CONVERTER.payload_codec.decode([payload])  # type: ignore[union-attr]
                decoded_somewhere |= set(found_in(plain.data))
    assert {"ana.silva@example.com", "Ana Silva", "+41791112233", "extra pillows"} <= (
        decoded_somewhere
    )


def payloads_of(message: Any) -> list[Payload]:
    """Every Payload inside a protobuf message (inputs, results, signals, memos, failures)."""
    found: list[Payload] = []
    if isinstance(message, Payload):
        return [message]
    if hasattr(message, "marker_name"):
        # The SDK's own bookkeeping in markers (a patch's name, a local activity's type
        # and attempt) is not a payload of reactor's; the local activity's result is.
        details = {k: v for k, v in message.details.items() if k not in MARKER_BOOKKEEPING}
        return [p for payloads in details.values() for p in payloads.payloads] + (
            payloads_of(message.failure) if message.HasField("failure") else []
        )
    for descriptor, value in message.ListFields():
        # Search attributes are indexed, not encoded: checked as ids below.
        if descriptor.message_type is None or descriptor.name == "search_attributes":
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif hasattr(value, "ListFields"):
            items = [value]
        else:
            items = list(value)  # a repeated field
        for item in items:
            if hasattr(item, "ListFields"):
                found += payloads_of(item)
    return found


async def test_search_attributes_and_workflow_ids_carry_ids_only(stay: Stay):
    for workflow_id in stay.workflow_ids:
        assert found_in(workflow_id) == []
        described = await stay.client.get_workflow_handle(workflow_id).describe()
        values = [str(pair.value) for pair in described.typed_search_attributes]
        assert found_in(json.dumps(values)) == [], workflow_id
        # Search attributes are indexed in plain text: they are ids (not payloads).
        assert described.raw_description.workflow_execution_info.search_attributes


async def test_no_guest_data_in_any_log_line_of_a_sample_stay_at_debug(stay: Stay):
    assert len(stay.log_lines) > 100  # DEBUG lines of the API, the worker and the SDK
    assert any(stay.events["message_received"]["id"] in line for line in stay.log_lines)
    leaks = [(found_in(line), line[:200]) for line in stay.log_lines if found_in(line)]
    assert leaks == []
