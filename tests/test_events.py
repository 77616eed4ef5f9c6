"""The event log: every change of a token writes one event, in the same transaction."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.domain import lifecycle, stored
from app.domain.timeutil import isoformat, utcnow
from app.extensions import db
from app.models import Event

from .support import TOKENS, callback_path, decide_path


def events_of(app, token_id: str) -> list[tuple]:
    with app.app_context():
        pk = stored.find_token(token_id).pk
        rows = db.session.execute(
            select(Event).where(Event.token_pk == pk).order_by(Event.id)
        ).scalars()
        return [(e.type, e.source) for e in rows]


def event_times(app, token_id: str) -> list:
    with app.app_context():
        pk = stored.find_token(token_id).pk
        return list(
            db.session.execute(
                select(Event.created_at).where(Event.token_pk == pk).order_by(Event.id)
            ).scalars()
        )


def test_a_created_token_has_one_created_event(app, api):
    token = api.create(tags=["a"])
    assert events_of(app, token["id"]) == [("waitpoint.created", None)]
    again = api.create(idempotencyKey="k")
    assert api.create(idempotencyKey="k")["isCached"] is True  # a replay changes nothing
    assert events_of(app, again["id"]) == [("waitpoint.created", None)]


@pytest.mark.parametrize("how", ["api", "callback", "page"])
def test_a_completion_writes_a_completed_event_saying_how(app, api, client, how):
    token = api.create()
    if how == "api":
        api.post(f"{TOKENS}/{token['id']}/complete", json={"data": 1})
    elif how == "callback":
        client.post(callback_path(token), json={"ok": True})
    else:
        client.post(decide_path(token), data={"approve": "Approve"})
    assert events_of(app, token["id"]) == [
        ("waitpoint.created", None),
        ("waitpoint.completed", how),
    ]
    created, completed = event_times(app, token["id"])
    assert isoformat(completed) == api.retrieve(token["id"])["completedAt"]
    assert created <= completed


def test_a_losing_completion_writes_nothing(app, api):
    token = api.create()
    api.post(f"{TOKENS}/{token['id']}/complete", json={"data": 1})
    api.post(f"{TOKENS}/{token['id']}/complete", json={"data": 2})
    assert [t for t, _ in events_of(app, token["id"])].count("waitpoint.completed") == 1


def test_time_outs_say_who_stored_them(app, api):
    swept = api.create(timeout="1h")
    read = api.create(timeout=isoformat(utcnow() + timedelta(milliseconds=30)))
    late = api.create(timeout=isoformat(utcnow() + timedelta(milliseconds=30)))
    operator = api.create(timeout="1h")
    time.sleep(0.05)
    api.retrieve(read["id"])  # a reader that finds it due stores the time-out
    api.post(f"{TOKENS}/{late['id']}/complete", json={"data": 1})  # too late
    with app.app_context():
        pk = stored.find_token(operator["id"]).pk
        lifecycle.time_out_now(pk, lifecycle.CompletionRecord(source="dashboard"))
        assert lifecycle.expire_due(utcnow() + timedelta(hours=2)) == 1
    timed_out = "waitpoint.timed_out"
    assert events_of(app, swept["id"])[1:] == [(timed_out, "sweep")]
    assert events_of(app, read["id"])[1:] == [(timed_out, "request")]
    assert events_of(app, late["id"])[1:] == [(timed_out, "request")]
    assert events_of(app, operator["id"])[1:] == [(timed_out, "dashboard")]


def test_the_sweep_writes_one_event_per_token_it_times_out(app, api):
    ids = [api.create(timeout="1m")["id"] for _ in range(7)]
    with app.app_context():
        assert lifecycle.expire_due(utcnow() + timedelta(minutes=2), batch_size=3) == 7
        assert lifecycle.expire_due(utcnow() + timedelta(minutes=3)) == 0
    for token_id in ids:
        assert events_of(app, token_id) == [
            ("waitpoint.created", None),
            ("waitpoint.timed_out", "sweep"),
        ]


def test_event_ids_grow_in_the_order_of_the_changes(app, api):
    first = api.create()
    second = api.create()
    api.post(f"{TOKENS}/{first['id']}/complete", json={})
    with app.app_context():
        rows = db.session.execute(select(Event.type, Event.token_pk).order_by(Event.id)).all()
        pks = {t: stored.find_token(t).pk for t in (first["id"], second["id"])}
    assert rows == [
        ("waitpoint.created", pks[first["id"]]),
        ("waitpoint.created", pks[second["id"]]),
        ("waitpoint.completed", pks[first["id"]]),
    ]
