"""The intake queue: events acknowledged while Temporal was slow or down.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("object_key", sa.String(400), nullable=True),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("leased_until_us", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_intake_events_received", "intake_events", ["received_us", "event_id"])
    op.create_index("ix_intake_events_object", "intake_events", ["object_key", "received_us"])


def downgrade() -> None:
    op.drop_table("intake_events")
