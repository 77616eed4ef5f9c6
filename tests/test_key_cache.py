"""The cache of valid API keys: one lookup per key and process, and a revocation in any
process refuses the key everywhere (at once on SQLite, within a notification on
PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from app.api.auth import KEY_CACHE
from app.api.key_cache import FileRevision, KeyCache, for_engine
from app.cli import create_api_key, migrate_database
from app.extensions import db

from .support import (
    TOKENS,
    Api,
    ServerProcess,
    create_database,
    drop_database,
    make_app,
    on_postgresql,
)

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


def test_an_entry_is_trusted_for_a_bounded_time_whatever_the_revision_says():
    looked_up: list[str] = []

    def look_up(digest):
        looked_up.append(digest)
        return 7

    cache = KeyCache(lambda: 1, lambda: None, max_age=0.2)
    assert [cache.project_of("d", look_up) for _ in range(3)] == [7, 7, 7]
    assert looked_up == ["d"]
    time.sleep(0.25)
    assert cache.project_of("d", look_up) == 7
    assert looked_up == ["d", "d"]  # looked up again once too old


def test_a_replaced_revision_file_is_read_anew(tmp_path):
    path = str(tmp_path / "w.db-keys")
    reader, writer = FileRevision(path), FileRevision(path)
    writer.bump()
    assert reader() == 1
    (tmp_path / "w.db-keys").unlink()  # deleted (or replaced) while the reader holds it
    writer.bump()
    writer.bump()
    assert reader() == 2  # the file now at the path, not the deleted one's 1
    reader.close()


def test_a_uri_filename_database_caches_nothing(tmp_path):
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///file:{tmp_path / 'w.db'}?mode=rwc&uri=true")
    assert for_engine(engine).revision() is None
    engine.dispose()


def test_a_revocation_the_servers_cannot_hear_of_is_not_made(tmp_path):
    # Its own SQLite database whatever engine the suite runs on: the revision file is SQLite's.
    app = make_app(f"sqlite:///{tmp_path / 'w.db'}")
    with app.app_context():
        migrate_database()
        key = create_api_key("alpha")
    api = Api(app.test_client(), key)
    assert api.get(TOKENS).status_code == 200
    revision_file = Path(app.extensions[KEY_CACHE].revision.path)
    revision_file.unlink()
    revision_file.mkdir()  # cannot be opened for writing
    result = app.test_cli_runner().invoke(args=["keys", "revoke", key])
    revision_file.rmdir()
    assert result.exit_code != 0
    assert "not revoked" in result.output
    assert api.get(TOKENS).status_code == 200  # still valid, as the database says
    with app.app_context():
        assert create_api_key("beta")  # the database is not left locked
        db.engine.dispose()


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
