"""tag index covers the deadline: status counts and "waiting + tag" read only the index

The index behind "status + tag, newest first" gains ``timeout_at`` as its last column,
so the effective-status checks (WAITING but overdue) need no row lookups. The swap is
one transaction; while the new index is built, writes to ``token_tags`` wait (seconds
for a few million tags). Not CONCURRENTLY: that cannot run in the migration's
transaction, and it waits for every open transaction, including the one holding the
migration lock of ``waitpoint serve``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:30:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD = "ix_token_tags_project_tag_status_pk"
NEW = "ix_token_tags_project_tag_status_pk_timeout"


def upgrade():
    op.create_index(NEW, "token_tags", ["project_id", "tag", "status", "token_pk", "timeout_at"])
    op.drop_index(OLD, "token_tags")


def downgrade():
    op.create_index(OLD, "token_tags", ["project_id", "tag", "status", "token_pk"])
    op.drop_index(NEW, "token_tags")
