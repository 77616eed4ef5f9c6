"""Migrations, engine settings and the indexes the hot queries rely on."""

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from app.domain import lifecycle, stored, token_list
from app.domain.timeutil import utcnow
from app.extensions import db

from .support import on_postgresql


def test_the_migrations_produce_exactly_the_models_schema(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_the_database_is_tuned_for_a_server(app):
    with app.app_context():
        if on_postgresql():
            # Durable commits, and timestamps stored with their zone.
            assert db.session.execute(text("SHOW synchronous_commit")).scalar() == "on"
            column_type = db.session.execute(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'tokens' AND column_name = 'created_at'"
                )
            ).scalar()
            assert column_type == "timestamp with time zone"
            return
        settings = {
            name: db.session.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    # WAL, foreign keys on, a busy timeout, synchronous=FULL (2): durable commits.
    assert settings == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 10000,
        "synchronous": 2,
    }


def test_timestamps_come_back_timezone_aware_utc(app, api_key):
    with app.app_context():
        token, _ = lifecycle.create_token(
            1, lifecycle.NewToken(timeout_at=utcnow() + timedelta(hours=1)), utcnow()
        )
        reloaded = stored.find_token(token.id)
        assert reloaded.created_at.utcoffset() == timedelta(0)
        assert reloaded.timeout_at.utcoffset() == timedelta(0)


def plan_of(query):
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    if db.engine.dialect.name == "sqlite":
        rows = db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "\n".join(str(r[-1]) for r in rows)
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    return "\n".join(r[0] for r in db.session.execute(text(f"EXPLAIN {compiled}")).all())


def test_status_and_tag_newest_first_is_an_index_range_scan(app):
    from sqlalchemy import select

    from app.models import Token

    with app.app_context():
        candidates = token_list._tag_candidates(1, ("WAITING",), None)
        query = select(Token).where(Token.pk.in_(candidates)).order_by(Token.pk.desc())
        params = {"project_id": 1, "tag_0": "customer:42", "now": utcnow(), "limit": 26}
        plan = plan_of(query.params(params))
    assert "ix_token_tags_project_tag_status_pk_timeout" in plan, plan
    assert "SCAN token_tags" not in plan and "Seq Scan on token_tags" not in plan, plan


def test_the_sweep_reads_its_partial_index(app):
    from sqlalchemy import select

    from app.models import Token

    with app.app_context():
        due = (
            select(Token.pk)
            .where(Token.status == "WAITING", Token.timeout_at <= utcnow())
            .order_by(Token.timeout_at)
            .limit(100)
        )
        plan = plan_of(due)
    assert "ix_tokens_waiting_deadline" in plan, plan
