"""The lifecycle module: the sweep, idempotency expiry, statuses copied to tags."""

import time
from datetime import timedelta

from sqlalchemy import select

from app.domain import lifecycle, stored
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Token, TokenTag

NOW = utcnow()


def make(project_id=1, **kwargs):
    token, _ = lifecycle.create_token(project_id, lifecycle.NewToken(**kwargs), NOW)
    return token


def stored_status(token):
    db.session.expire_all()
    return db.session.get(Token, token.pk).status


def tag_statuses(token):
    return set(
        db.session.execute(select(TokenTag.status).where(TokenTag.token_pk == token.pk)).scalars()
    )


def test_the_sweep_times_out_only_due_tokens(app, api_key):
    with app.app_context():
        due = make(timeout_at=NOW + timedelta(seconds=1), tags=("a", "b"))
        later = make(timeout_at=NOW + timedelta(hours=1))
        forever = make()
        assert lifecycle.expire_due(NOW) == 0
        assert lifecycle.expire_due(NOW + timedelta(seconds=1)) == 1
        assert stored_status(due) == "TIMED_OUT"
        assert tag_statuses(due) == {"TIMED_OUT"}
        assert stored_status(later) == stored_status(forever) == "WAITING"
        assert lifecycle.expire_due(NOW + timedelta(seconds=2)) == 0  # nothing twice


def test_the_sweep_works_in_batches(app, api_key):
    with app.app_context():
        tokens = [make(timeout_at=NOW + timedelta(seconds=i % 3 + 1)) for i in range(25)]
        assert lifecycle.expire_due(NOW + timedelta(seconds=5), batch_size=4) == 25
        assert {stored_status(t) for t in tokens} == {"TIMED_OUT"}


def test_completion_copies_the_status_to_tags_and_records_the_source(app, api_key):
    with app.app_context():
        token = make(tags=("x",))
        record = lifecycle.CompletionRecord(source="api", actor="wp_abc", ip="127.0.0.1")
        assert lifecycle.complete_token(token.pk, '{"a":1}', record, NOW) is True
        assert lifecycle.complete_token(token.pk, '{"a":2}', record, NOW) is False
        assert tag_statuses(token) == {"COMPLETED"}
        db.session.expire_all()
        reloaded = stored.find_token(token.id)
        assert reloaded.output == '{"a":1}'
        assert (reloaded.completion.source, reloaded.completion.actor) == ("api", "wp_abc")


def test_an_expired_idempotency_key_makes_a_new_token(app, api_key):
    with app.app_context():
        new = lifecycle.NewToken(idempotency_key="k", idempotency_ttl=timedelta(minutes=5))
        first, cached = lifecycle.create_token(1, new, NOW)
        assert cached is False
        again, cached = lifecycle.create_token(1, new, NOW + timedelta(minutes=4))
        assert (again.pk, cached) == (first.pk, True)
        fresh, cached = lifecycle.create_token(1, new, NOW + timedelta(minutes=5))
        assert cached is False and fresh.pk != first.pk
        # The old token keeps its key for display; the new one owns it now.
        assert stored.find_token(first.id).idempotency_key == "k"
        latest, cached = lifecycle.create_token(1, new, NOW + timedelta(minutes=6))
        assert (latest.pk, cached) == (fresh.pk, True)


def test_a_reader_times_out_an_overdue_token_before_reporting_it(app, api_key):
    with app.app_context():
        token = make(timeout_at=utcnow() + timedelta(milliseconds=50))
        assert lifecycle.settled(token, utcnow()).status == "WAITING"
        assert stored_status(token) == "WAITING"
        time.sleep(0.06)
        assert lifecycle.settled(token, utcnow()).status == "TIMED_OUT"
        assert stored_status(token) == "TIMED_OUT"
        assert tag_statuses(token) == set()  # no tags: nothing else to keep in step


def test_a_reader_whose_clock_runs_ahead_reports_only_what_is_stored(app, api_key):
    with app.app_context():
        token = make(timeout_at=utcnow() + timedelta(hours=1), tags=("t",))
        # The reader thinks the deadline passed; the write's clock says it has not.
        assert lifecycle.settled(token, utcnow() + timedelta(hours=2)).status == "WAITING"
        assert stored_status(token) == "WAITING"
        assert tag_statuses(token) == {"WAITING"}


def test_a_completion_written_after_the_deadline_times_the_token_out(app, api_key):
    with app.app_context():
        token = make(timeout_at=utcnow() + timedelta(milliseconds=30), tags=("t",))
        time.sleep(0.04)
        record = lifecycle.CompletionRecord(source="api")
        assert lifecycle.complete_token(token.pk, '{"late":true}', record) is False
        assert stored_status(token) == "TIMED_OUT"
        assert tag_statuses(token) == {"TIMED_OUT"}
        assert stored.token_by_pk(token.pk).completion is None


def test_the_expire_command_prints_the_count(app, runner, api_key):
    with app.app_context():
        make(timeout_at=NOW + timedelta(milliseconds=1))
        make(timeout_at=NOW + timedelta(milliseconds=2))
        make(timeout_at=NOW + timedelta(days=1))
    time.sleep(0.01)
    result = runner.invoke(args=["expire"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2"
    assert runner.invoke(args=["expire"]).output.strip() == "0"
