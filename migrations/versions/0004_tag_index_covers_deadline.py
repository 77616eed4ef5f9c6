"""tag index covers the deadline: status counts and "waiting + tag" read only the index

The index behind "status + tag, newest first" gains ``timeout_at`` as its last column,
so the effective-status checks (WAITING but overdue) need no row lookups. On
PostgreSQL both indexes are built and dropped CONCURRENTLY: writers are not blocked
while a large ``token_tags`` is indexed.

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


def _swap(create: str, columns: list[str], drop: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(create, "token_tags", columns, postgresql_concurrently=True)
            op.drop_index(drop, "token_tags", postgresql_concurrently=True)
    else:
        op.create_index(create, "token_tags", columns)
        op.drop_index(drop, "token_tags")


def upgrade():
    _swap(NEW, ["project_id", "tag", "status", "token_pk", "timeout_at"], OLD)


def downgrade():
    _swap(OLD, ["project_id", "tag", "status", "token_pk"], NEW)
