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

# The effects ledger: sends to providers that take no idempotency key (SendGrid, Slack,
# Teams). One row per effect, keyed by "<workflow id>/<step>"; ``key_hash`` (SHA-256 of the
# key) is the primary key, since a workflow id may be up to 2 KB. Keys and provider
# references only: never an address, a name or a message.
effects = Table(
    "effects",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("key", Text, nullable=False),
    Column("provider", String(40), nullable=False),
    # started: a request may have reached the provider; done: the provider answered.
    Column("state", String(10), nullable=False),
    # What the provider answered with (a message id), "" when it gives none.
    Column("reference", String(400), nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    Column("started_us", BigInteger, nullable=False),
    Column("done_us", BigInteger, nullable=True),
    Index("ix_effects_started", "started_us"),
)
