"""rate limits: fixed-window request counters shared by every process and host

UNLOGGED on PostgreSQL: counters need no crash safety, so their writes skip the WAL
(and a crash or failover empties the table, which only resets the limits). On SQLite
the counters live in a file of their own beside the database, so that they never queue
behind its writers; this table stays empty there and exists for one schema on both.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limits")),
        prefixes=unlogged,
    )


def downgrade():
    op.drop_table("rate_limits")
