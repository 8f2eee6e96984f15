"""Control characters in logged values are escaped in both log formats: a newline in a
rejected event id cannot forge a log line."""

from __future__ import annotations

import json
import logging

import pytest

from core.logging import JsonFormatter, TextFormatter, escaped
from tests.conftest import sample
from tests.helpers import running_reactor, unique

FORGED = "evt-1\n01:02:03 ERROR   reactor.webhook: forged\r\x1b[31m\u2028end"


def test_escaped_keeps_text_and_escapes_control_characters():
    assert escaped("Zürich 412 ok") == "Zürich 412 ok"
    assert escaped("a\nb\r\tc\x1b\u2028") == "a\\nb\\r\\tc\\x1b\\u2028"


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
async def test_a_newline_in_a_rejected_event_id_stays_on_one_line(
    temporal_env, tmp_path, caplog, formatter
):
    caplog.set_level(logging.INFO, logger="reactor.webhook")
    event = unique(sample("task_created"), id=FORGED)
    async with running_reactor(temporal_env.client, tmp_path, worker=False) as reactor:
        response = await reactor.post(event)
    assert response.status_code == 422
    [record] = [r for r in caplog.records if r.name == "reactor.webhook"]
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\u2028" not in line
    if isinstance(formatter, JsonFormatter):
        assert json.loads(line)["event_id"] == FORGED
    else:
        assert "event_id=evt-1\\n01:02:03 ERROR   reactor.webhook: forged\\r\\x1b" in line
