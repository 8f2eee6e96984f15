"""Dates in guests' emails are the property's local dates, nights counted between them."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default

import pytest

from activities.email import format_day, in_local_days
from tests.conftest import sample
from tests.helpers import by_name, running_reactor, unique

# UTC+12 all year (no daylight saving time).
TARAWA = '{"PROP-ZRH-01": "Pacific/Tarawa"}'


def test_a_stay_in_local_days_at_utc_plus_12():
    # 03:00 UTC is 15:00 on the 10th in Tarawa; 22:00 UTC on the 12th is 10:00 on the 13th.
    data = {"arrival": "2026-12-10T03:00:00Z", "departure": "2026-12-12T22:00:00+00:00"}
    local = in_local_days(data, "Pacific/Tarawa")
    assert local == {"arrival": "2026-12-10", "departure": "2026-12-13", "nights": 3}
    assert format_day(local["departure"]) == "Sun, 13 Dec 2026"
    # Read in UTC, the same stay would leave on Saturday after two nights.
    assert in_local_days(data, "UTC")["nights"] == 2


async def confirmation_for(temporal_env, tmp_path, arrival: str, departure: str) -> EmailMessage:
    event = unique(sample("reservation_created"))
    event["context"] = {**event["context"], "arrival": arrival, "departure": departure}
    async with running_reactor(
        temporal_env.client,
        tmp_path,
        PROPERTY_TIMEZONES=TARAWA,
        REACTOR_DISABLED_REACTIONS="guest-journey,housekeeping",
    ) as reactor:
        await reactor.post(event)
        result = await reactor.routed(event["id"])
    assert by_name(result)["booking-confirmation"].status == "done", result
    [path] = (tmp_path / "outbox").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(
    ("arrival", "departure"),
    [("2026-12-10T03:00:00Z", "2026-12-12T22:00:00Z"), ("2026-12-10", "2026-12-13")],
    ids=["instants", "dates-alone"],
)
async def test_a_booking_confirmation_at_utc_plus_12_shows_local_days(
    temporal_env, tmp_path, arrival, departure
):
    message = await confirmation_for(temporal_env, tmp_path, arrival, departure)
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert message["Subject"].endswith("is confirmed: Thu, 10 Dec 2026")
    assert "Arrival:      Thu, 10 Dec 2026" in text
    assert "Departure:    Sun, 13 Dec 2026" in text
    assert "Nights:       3" in text
