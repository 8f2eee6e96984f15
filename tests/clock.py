"""What the time of day decides, pinned by the tests themselves.

Every test whose outcome could depend on the hour (quiet hours, roster shifts) runs
twice, through the ``clock`` fixture: in the ``day`` case the instant the test runs
at is outside the quiet hours and inside everyone's shift; in the ``night`` case the
quiet hours cover it and every shift excludes it. A test passes both ways or it
depends on the hour it happens to run at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

CASES = ("day", "night")


def hhmm(at: datetime) -> str:
    return f"{at:%H:%M}"


def window(at: datetime, zone: str, start: timedelta, end: timedelta) -> str:
    """``HH:MM-HH:MM`` in ``zone``, from ``at + start`` to ``at + end`` (minutes cut)."""
    local = at.astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0)
    return f"{hhmm(local + start)}-{hhmm(local + end)}"


@dataclass(frozen=True)
class Clock:
    """The case a test runs in, and the settings that make it so at a given instant."""

    case: str

    @property
    def night(self) -> bool:
        return self.case == "night"

    def quiet_hours(self, at: datetime, zone: str) -> str:
        """Quiet hours covering ``at`` at night; by day, none at all."""
        if not self.night:
            return ""
        return window(at, zone, -timedelta(hours=1), timedelta(hours=1))

    def shift(self, at: datetime, zone: str) -> str:
        """A shift covering ``at`` by day (for 12 hours from an hour before); at night
        one that begins two hours after ``at`` (and lasts 12 hours)."""
        if self.night:
            return window(at, zone, timedelta(hours=2), timedelta(hours=14))
        return window(at, zone, -timedelta(hours=1), timedelta(hours=11))

    def shift_begins(self, at: datetime) -> datetime:
        """When the night case's shift begins, as an instant (minutes cut, as in shift())."""
        return at.replace(second=0, microsecond=0) + timedelta(hours=2)


@pytest.fixture(params=CASES)
def clock(request: pytest.FixtureRequest) -> Clock:
    return Clock(request.param)


def next_local(after: datetime, hour: int, minute: int, zone: str) -> datetime:
    """The first instant after ``after`` when clocks in ``zone`` show ``hour:minute``."""
    tz = ZoneInfo(zone)
    day = after.astimezone(tz).date()
    while True:
        at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if at > after:
            return at
        day += timedelta(days=1)


async def pin(env, hour: int, minute: int, zone: str) -> datetime:
    """Move the time-skipping server's clock on to the next ``hour:minute`` in ``zone``
    (it only moves forward): the test then runs at that local time, whenever it runs."""
    from tests.helpers import skip_until

    at = next_local(await env.get_current_time(), hour, minute, zone)
    await skip_until(env, at)
    return at
