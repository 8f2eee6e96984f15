"""Odd inputs are normalized before workflow code sees them, and configuration that would
only fail inside a workflow stops the worker at its start."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.events import LikeMagicEvent
from workflows.common import instant
from workflows.guest_journey import JourneyState

ROOT = Path(__file__).resolve().parent.parent


def test_an_instant_without_offset_is_utc():
    assert instant("2026-12-10T14:32:07") == datetime(2026, 12, 10, 14, 32, 7, tzinfo=UTC)
    assert instant(datetime(2026, 12, 10, 14, 32)) == datetime(2026, 12, 10, 14, 32, tzinfo=UTC)
    event = LikeMagicEvent.model_validate(
        {"id": "e1", "topic": "X", "timestamp": "2026-12-10T14:32"}
    )
    assert event.timestamp == datetime(2026, 12, 10, 14, 32, tzinfo=UTC)


def test_a_date_alone_is_the_start_of_that_day_in_the_propertys_zone():
    new_york = ZoneInfo("America/New_York")
    at = instant("2026-12-10", "America/New_York")
    assert at == datetime(2026, 12, 10, 0, 0, tzinfo=new_york)
    assert at is not None and at.astimezone(UTC) == datetime(2026, 12, 10, 5, 0, tzinfo=UTC)
    assert instant(date(2026, 12, 10), "Pacific/Auckland") == datetime.combine(
        date(2026, 12, 10), time(0), tzinfo=ZoneInfo("Pacific/Auckland")
    )
    assert instant("10 December") is None


def test_journey_state_holds_only_aware_instants():
    state = JourneyState.model_validate(
        {"reservation_id": "R1", "arrival": "2026-12-10T15:00:00", "messages": {}}
    )
    assert state.arrival == datetime(2026, 12, 10, 15, 0, tzinfo=UTC)


ROSTER_WITH = """
timezone: {zone}
staff:
  - {{id: hk-ana, name: Ana, floors: [4], shift: "{shift}"}}
"""


def start_worker(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python worker.py` with these variables (and nothing from the developer's shell)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "REACTOR_"))}
    # A closed port: a worker that got past its checks could not connect either way.
    values = {**clean, "TEMPORAL_ADDRESS": "127.0.0.1:9", "LOG_FORMAT": "text", **env}
    return subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=values,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "roster", "message"),
    [
        (
            "PROPERTY_TIMEZONES",
            '{"PROP-ZRH-01": "Europe/Zurch"}',
            None,
            "PROPERTY_TIMEZONES (property PROP-ZRH-01): 'Europe/Zurch' is not an IANA time zone",
        ),
        (
            "JOURNEY_QUIET_HOURS",
            "21:00-24:00",
            None,
            "JOURNEY_QUIET_HOURS=21:00-24:00: 24:00 is not a time of day",
        ),
        (
            "HOUSEKEEPING_ROSTER",
            "",
            {"zone": "Europe/Zurich", "shift": "16:00-24:30"},
            'is not a valid roster: staff.0.shift: shift must look like "07:00-15:00"',
        ),
        (
            "HOUSEKEEPING_ROSTER",
            "",
            {"zone": "Europe/Zurch", "shift": "07:00-15:00"},
            "is not a valid roster: timezone: 'Europe/Zurch' is not an IANA time zone",
        ),
    ],
    ids=["time-zone", "quiet-hours", "roster-shift", "roster-time-zone"],
)
def test_a_misconfigured_worker_does_not_start(tmp_path, variable, value, roster, message):
    if roster is not None:
        path = tmp_path / "roster.yaml"
        path.write_text(ROSTER_WITH.format(**roster))
        value = str(path)
    result = start_worker(tmp_path, **{variable: value})
    assert result.returncode == 2, result.stderr
    assert "worker not started: invalid configuration" in result.stderr
    assert variable in result.stderr
    assert message in result.stderr
    assert "worker started" not in result.stderr
