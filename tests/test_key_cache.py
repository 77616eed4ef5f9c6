"""The cache of valid API keys: one lookup per key and process, and a revocation in any
process refuses the key everywhere (at once on SQLite, within a notification on
PostgreSQL)."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import event

from app.api.auth import KEY_CACHE
from app.extensions import db

from .support import TOKENS, Api, ServerProcess, create_database, drop_database, on_postgresql

# PostgreSQL delivers the revoking transaction's NOTIFY to the other processes' listeners
# a moment after the commit; SQLite's revision file is raised before the command returns.
PROPAGATION = 2.0


def key_lookups(app) -> list[str]:
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(_conn, _cursor, statement, *_):
        if "FROM api_keys" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen


def until_cached(app, api: Api) -> None:
    """Requests until this app caches (on PostgreSQL, once its listener is listening)."""
    cache = app.extensions[KEY_CACHE]
    deadline = time.monotonic() + 10
    while True:
        assert api.get(TOKENS).status_code == 200
        if cache.revision() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert api.get(TOKENS).status_code == 200  # looked up now, if it was not before
    assert cache.revision() is not None


def refused_within(api: Api, seconds: float) -> int:
    """How many requests until the key is refused; fails past ``seconds``."""
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        response = api.get(TOKENS)
        if response.status_code == 401:
            return attempts
        assert response.status_code == 200
        assert time.monotonic() - started < seconds, "the revoked key still works"
        time.sleep(0.02)


def test_a_valid_key_is_looked_up_once_per_process(app, api):
    until_cached(app, api)
    lookups = key_lookups(app)
    for _ in range(5):
        assert api.get(TOKENS).status_code == 200
    assert lookups == []


def test_an_invalid_key_is_looked_up_every_time(app, client):
    lookups = key_lookups(app)
    wrong = Api(client, "wp_" + "x" * 43)
    for _ in range(3):
        assert wrong.get(TOKENS).status_code == 401
    assert len(lookups) == 3


def test_a_key_revoked_in_another_process_is_refused_here(app_factory, app, api, api_key):
    until_cached(app, api)
    other = app_factory()  # another process: an app, and a cache, of its own
    result = other.test_cli_runner().invoke(args=["keys", "revoke", api_key])
    assert result.exit_code == 0, result.output
    attempts = refused_within(api, PROPAGATION)
    if not on_postgresql():
        assert attempts == 1  # the very next request


@pytest.mark.slow
def test_every_worker_of_a_server_refuses_a_key_revoked_by_the_cli(tmp_path):
    url = create_database(tmp_path)
    server = ServerProcess(url, tmp_path).start()
    try:
        key = server.new_key()
        headers = {"Authorization": f"Bearer {key}"}
        clients = [httpx.Client(base_url=server.url, headers=headers) for _ in range(8)]
        for _ in range(5):  # eight connections: both workers see (and cache) the key
            assert {c.get(TOKENS).status_code for c in clients} == {200}
        server.cli("keys", "revoke", key)
        deadline = time.monotonic() + (PROPAGATION if on_postgresql() else 0)
        while True:
            statuses = {c.get(TOKENS).status_code for c in clients for _ in range(3)}
            if statuses == {401} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert statuses == {401}
        for c in clients:
            c.close()
    finally:
        server.stop()
        drop_database(url)
