"""approvers: named approvers and their votes, and the mail outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def _fk(table, column, target):
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{target.split('.')[0]}"),
        ondelete="CASCADE",
    )


def upgrade():
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("required_approvals", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("requested_by", sa.String(length=320), nullable=True))
    op.create_table(
        "token_approvers",
        sa.Column("id", BigPK, autoincrement=True, nullable=False),
        sa.Column("token_pk", BigPK, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("decided_at", Time, nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        _fk("token_approvers", "token_pk", "tokens.pk"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_approvers")),
    )
    op.create_index(
        "ux_token_approvers_token_position", "token_approvers", ["token_pk", "position"],
        unique=True,
    )
    op.create_index(
        "ix_token_approvers_project_email", "token_approvers", ["project_id", "email", "token_pk"]
    )
    op.create_table(
        "mail_messages",
        sa.Column("id", BigPK, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("token_pk", BigPK, nullable=False),
        sa.Column("approver_id", BigPK, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Time, nullable=False),
        sa.Column("claimed_until", Time, nullable=True),
        sa.Column("last_attempt_at", Time, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("transport", sa.String(length=16), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("sent_at", Time, nullable=True),
        _fk("mail_messages", "project_id", "projects.id"),
        _fk("mail_messages", "token_pk", "tokens.pk"),
        _fk("mail_messages", "approver_id", "token_approvers.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
    )
    op.create_index(
        "ix_mail_messages_pending_due",
        "mail_messages",
        ["next_attempt_at", "id"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_mail_messages_token_pk", "mail_messages", ["token_pk", "id"])
    op.create_index("ix_mail_messages_project_id", "mail_messages", ["project_id", "id"])
    op.create_index("ix_mail_messages_approver_id", "mail_messages", ["approver_id"])


def downgrade():
    op.drop_table("mail_messages")
    op.drop_table("token_approvers")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("requested_by")
        batch_op.drop_column("required_approvals")
