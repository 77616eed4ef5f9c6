"""approval pages: what is asked, and approve/reject decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 16:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("details_json", sa.Text(), nullable=True))
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved", sa.Boolean(), nullable=True))


def downgrade():
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.drop_column("approved")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("details_json")
        batch_op.drop_column("description")
        batch_op.drop_column("title")
