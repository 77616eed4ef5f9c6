"""events: one append-only row per change of a token, written with the change

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 15:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "events",
        sa.Column("id", BigPK, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("token_pk", BigPK, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_events_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_pk"], ["tokens.pk"], name=op.f("fk_events_token_pk_tokens"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_project_id", "events", ["project_id", "id"])
    op.create_index("ix_events_token_pk", "events", ["token_pk"])


def downgrade():
    op.drop_index("ix_events_token_pk", table_name="events")
    op.drop_index("ix_events_project_id", table_name="events")
    op.drop_table("events")
