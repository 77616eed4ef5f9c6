"""response forms: a token's form, button labels and time-out output; each vote's response

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("form_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("approve_label", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("reject_label", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("timeout_output", sa.Text(), nullable=True))
    with op.batch_alter_table("token_approvers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_json", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("token_approvers", schema=None) as batch_op:
        batch_op.drop_column("response_json")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("timeout_output")
        batch_op.drop_column("reject_label")
        batch_op.drop_column("approve_label")
        batch_op.drop_column("form_json")
