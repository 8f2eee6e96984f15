"""reactor's own durable storage: one engine, one schema, one migration history.

Used by the API and the activities; workflows never touch it. ``schema`` holds the tables,
``migrations/versions`` their history (Alembic), ``db`` opens the store, and one module per
use of it (``intake``: events waiting for Temporal).
"""
