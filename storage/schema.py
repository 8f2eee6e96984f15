"""Every table of reactor's store. A new table goes here and gets a migration of its own in
``storage/migrations/versions`` (the next number), so existing databases follow."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# Events acknowledged to the platform but not yet held by Temporal. One row per event id:
# a redelivery of a waiting event is a duplicate. Times are microseconds since the epoch.
intake_events = Table(
    "intake_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("topic", String(200), nullable=False),
    # "<objectType>:<objectId>": events of one object are forwarded in the order received.
    Column("object_key", String(400), nullable=True),
    Column("received_us", BigInteger, nullable=False),
    # Why it was queued: temporal_unavailable, temporal_slow, temporal_down, behind_object.
    Column("reason", String(40), nullable=False),
    # The event as received (JSON text): it holds guest data, never printed or logged.
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # The last refusal or failure of a forward (an error kind and status, no event data).
    Column("last_error", Text, nullable=True),
    # A forwarder that claimed the row holds it until then (0: free).
    Column("leased_until_us", BigInteger, nullable=False, default=0),
    Index("ix_intake_events_received", "received_us", "event_id"),
    Index("ix_intake_events_object", "object_key", "received_us"),
)
