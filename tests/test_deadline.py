"""A decision is checked against the deadline when it is written, not when it arrived.

Once anyone has been told ``TIMED_OUT``, nothing may complete the token: a completion
that waits for its turn past the deadline loses, and a reader that finds an overdue
token stores ``TIMED_OUT`` before it says so.
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from app.domain import stored
from app.domain.timeutil import isoformat, utcnow
from app.extensions import db
from app.infra.database import write_transaction
from app.models import Token

from .support import TOKENS, on_postgresql, server_on_new_database


def hold_the_write_path(app, token_pk: int, held: threading.Event, release: threading.Event):
    """What a busy server does to a completion: it waits for its turn to write. On SQLite
    behind the writer queue; on PostgreSQL behind another transaction writing the row."""
    with app.app_context():
        if on_postgresql():
            tokens = Token.__table__
            db.session.execute(
                update(tokens).where(tokens.c.pk == token_pk).values(status=tokens.c.status)
            )
        else:
            write_transaction()
        held.set()
        release.wait(10)
        db.session.commit()
        db.session.remove()


@contextmanager
def write_path_held(app, token_id: str):
    """Inside, the token cannot be written (``hold_the_write_path``); released on leaving."""
    with app.app_context():
        pk = stored.find_token(token_id).pk
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_the_write_path, args=(app, pk, held, release))
    holder.start()
    assert held.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join(10)


def test_a_completion_that_gets_its_turn_after_the_deadline_loses(app, api):
    token = api.create(timeout=isoformat(utcnow() + timedelta(milliseconds=400)))
    answers = {}

    def callback():  # sent well before the deadline
        answers["callback"] = app.test_client().post(token["url"], json={"approved": False})

    def reader():  # asks after the deadline, while the completion still waits
        answers["reader"] = api.retrieve(token["id"])["status"]

    sender, reading = threading.Thread(target=callback), threading.Thread(target=reader)
    with write_path_held(app, token["id"]):
        sender.start()
        time.sleep(0.5)
        reading.start()
        time.sleep(0.2)
    for thread in (sender, reading):
        thread.join(10)

    body = answers["callback"].get_json()
    final = api.retrieve(token["id"])
    assert body == {"success": True, "applied": False, "status": "TIMED_OUT"}
    assert answers["reader"] == final["status"] == "TIMED_OUT"


def test_the_completion_time_is_the_time_of_the_write(app, api):
    token = api.create(timeout="1h")
    sender = threading.Thread(target=lambda: app.test_client().post(token["url"], json={}))
    with write_path_held(app, token["id"]):
        sent_at = utcnow()
        sender.start()
        time.sleep(0.3)
    sender.join(10)
    completed_at = datetime.fromisoformat(api.retrieve(token["id"])["completedAt"])
    assert completed_at >= sent_at + timedelta(milliseconds=250)  # not when it was sent
    assert completed_at.tzinfo == UTC


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    """A server for load: its own database, and no rate limits (they are not the subject)."""
    with server_on_new_database(
        tmp_path_factory.mktemp("deadline"), WAITPOINT_RATE_LIMITS="off"
    ) as server:
        yield server


@pytest.mark.slow
def test_under_load_nobody_told_timed_out_ever_sees_the_token_completed(busy_server):
    """The outside run's reproduction: 30 tokens share a deadline; completions arrive in
    its last few hundred milliseconds (and just after) while the server is busy writing
    (other clients create tokens, and the sweep times out a crowd of tokens that fell due
    just before), and readers ask all along."""
    headers = {"Authorization": f"Bearer {busy_server.new_key('busy')}"}

    def client():
        return httpx.Client(base_url=busy_server.url, headers=headers, timeout=30)

    deadline = utcnow() + timedelta(seconds=12)
    with client() as http, ThreadPoolExecutor(8) as pool:
        crowd = {"timeout": isoformat(deadline - timedelta(milliseconds=100)), "tags": ["crowd"]}
        list(pool.map(lambda _: http.post(TOKENS, json=crowd), range(2000)))
        tokens = [
            http.post(TOKENS, json={"timeout": isoformat(deadline)}).json() for _ in range(30)
        ]
    assert utcnow() < deadline - timedelta(seconds=1), "set-up took too long"
    told_timed_out: set[str] = set()
    applied: set[str] = set()
    stop = threading.Event()

    def load():
        with client() as c:
            while not stop.is_set():
                c.post(TOKENS, json={"tags": ["load"]})

    def read(mine):
        with client() as c:
            while not stop.is_set():
                for token in mine:
                    if c.get(f"{TOKENS}/{token['id']}").json()["status"] == "TIMED_OUT":
                        told_timed_out.add(token["id"])

    def complete(token):
        at = deadline - timedelta(milliseconds=random.Random(token["id"]).uniform(-100, 200))
        with httpx.Client(timeout=30) as c:
            c.get(f"{busy_server.url}/healthz")  # connected before the moment comes
            time.sleep(max(0.0, (at - utcnow()).total_seconds()))
            body = c.post(token["url"], json={"approved": True}).json()
        if body["applied"]:
            applied.add(token["id"])
        elif body["status"] == "TIMED_OUT":
            told_timed_out.add(token["id"])

    time.sleep(max(0.0, (deadline - utcnow()).total_seconds() - 2))
    with ThreadPoolExecutor(len(tokens) + 10) as pool:
        background = [pool.submit(load) for _ in range(4)]
        background += [pool.submit(read, tokens[i::6]) for i in range(6)]
        assert len(list(pool.map(complete, tokens))) == len(tokens)
        time.sleep(max(0.0, (deadline - utcnow()).total_seconds()) + 0.5)
        stop.set()
        for future in background:
            future.result()

    with client() as http:
        final = {t["id"]: http.get(f"{TOKENS}/{t['id']}").json() for t in tokens}
    for token_id, body in final.items():
        if token_id in told_timed_out:
            assert body["status"] == "TIMED_OUT", token_id
        if token_id in applied:
            assert body["status"] == "COMPLETED", token_id
        if body["status"] == "COMPLETED":
            assert body["completedAt"] < body["timeoutAt"], body
    assert applied and told_timed_out  # both outcomes happened: the race was run
