"""Rate limits: per API key, failed keys and callback URLs per client address, shared
storage, 429s with Retry-After, and a storage failure that refuses nothing."""

import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.cli import create_api_key
from app.config import ConfigError, from_environment
from app.domain.credentials import hash_api_key
from app.extensions import db
from app.web.ratelimit import API_KEY, Limiter, address_key, lease_size
from app.web.ratelimit_storage import PostgresCounters, SqliteCounters

from .support import (
    SECRET,
    TOKENS,
    Api,
    ServerProcess,
    callback_path,
    create_database,
    decide_path,
    drop_database,
    on_postgresql,
)

ELSEWHERE = {"REMOTE_ADDR": "198.51.100.7"}


def build(app_factory, **limits):
    """An app with some limits set (``api_key="3/minute"``), its client and a key."""
    config = {f"WAITPOINT_RATE_LIMIT_{name.upper()}": value for name, value in limits.items()}
    app = app_factory(**config)
    with app.app_context():
        key = create_api_key("alpha")
    return app, Api(app.test_client(), key), key


def from_environment_with(**environ) -> dict:
    return from_environment(Path(tempfile.gettempdir()), {"SECRET_KEY": SECRET, **environ})


def assert_json_429(response, subject):
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.is_json and set(response.get_json()) == {"error"}
    assert response.get_json()["error"].startswith(f"{subject}: too many")


def assert_html_429(response):
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.mimetype == "text/html"
    assert "Too many requests" in response.get_data(as_text=True)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


def stored_keys(app) -> list[str]:
    with app.app_context():
        if on_postgresql():
            return list(db.session.execute(text("SELECT key FROM rate_limits")).scalars())
        path = db.engine.url.database + "-ratelimit"
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM rate_limits")]


# Per API key -----------------------------------------------------------------------------


def test_an_api_key_past_its_limit_gets_the_json_error_with_retry_after(app_factory):
    app, api, key = build(app_factory, api_key="3/minute")
    for _ in range(3):
        assert api.get(TOKENS).status_code == 200
    assert_json_429(api.get(TOKENS), "API key")
    assert_json_429(api.post(TOKENS, json={}), "API key")  # every route counts for the key
    with app.app_context():
        other = Api(app.test_client(), create_api_key("beta"))
    assert other.get(TOKENS).status_code == 200  # each key has its own count
    keys = stored_keys(app)
    assert any(hash_api_key(key) in k for k in keys)
    assert not any(key in k or "wp_" in k for k in keys)  # never the key itself


def test_requests_with_invalid_keys_are_limited_per_address(app_factory):
    app, api, _ = build(app_factory, api_key_failures="5/minute")
    client = app.test_client()
    for i in range(5):
        guess = {"Authorization": f"Bearer wp_guess{i}"}
        assert client.get(TOKENS, headers=guess).status_code == 401
    assert_json_429(client.get(TOKENS, headers={"Authorization": "Bearer wp_x"}), "Authorization")
    assert_json_429(client.post(TOKENS, json={}), "Authorization")  # no key at all counts too
    elsewhere = client.get(TOKENS, headers={"Authorization": "Bearer wp_x"}, environ_base=ELSEWHERE)
    assert elsewhere.status_code == 401
    assert api.get(TOKENS).status_code == 200  # a valid key from that address still works


# Callback URLs per client address -----------------------------------------------------------


def test_callback_urls_are_limited_per_address_as_json_or_as_a_page(app_factory):
    app, api, _ = build(app_factory, callback="4/minute")
    token = api.create(timeout="1h")  # API calls do not count here
    client = app.test_client()
    assert client.get(callback_path(token)).status_code == 200
    assert client.get(decide_path(token) + "/card").status_code == 204
    assert client.post(callback_path(token), json={"approved": True}).status_code == 200
    assert client.post(callback_path(token), json={}).status_code == 200
    assert_json_429(client.post(callback_path(token), json={}), "callback URL")
    assert_html_429(client.get(callback_path(token)))  # the approval page, though under /api/
    assert_html_429(client.post(decide_path(token), data={"approve": "Approve"}))
    assert client.post(callback_path(token), json={}, environ_base=ELSEWHERE).status_code == 200


def test_invalid_callback_urls_are_limited_per_address(app_factory):
    app, api, _ = build(app_factory, callback_failures="3/minute")
    token = api.create(timeout="1h")
    wrong = callback_path(token)[:-8] + "00000000"
    unknown = callback_path(token).replace(token["id"], "waitpoint_" + "x" * 25)
    client = app.test_client()
    assert client.post(wrong, json={}).status_code == 404
    assert client.get(unknown).status_code == 404
    assert client.get(decide_path({"url": wrong}) + "/card").status_code == 404
    assert_json_429(client.post(wrong, json={}), "callback URL")
    assert_html_429(client.get(wrong))
    assert client.get(callback_path(token)).status_code == 200  # valid URLs from there still work
    assert client.post(wrong, json={}, environ_base=ELSEWHERE).status_code == 404


def test_ipv6_clients_count_per_64_network():
    assert address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"


# Shared by every process, and the storage itself --------------------------------------------


def test_two_app_instances_on_one_database_share_the_counts(app_factory):
    first, api, key = build(app_factory, api_key="5/minute")
    second = Api(app_factory(WAITPOINT_RATE_LIMIT_API_KEY="5/minute").test_client(), key)
    for client in (api, second, api, second, api):
        assert client.get(TOKENS).status_code == 200
    assert_json_429(second.get(TOKENS), "API key")
    assert_json_429(api.get(TOKENS), "API key")


def statuses_from_a_server(tmp_path, limit: str, requests: int) -> list[int]:
    """``requests`` GETs with one key from 10 threads, each request on a connection of its
    own so that both workers take some, against a server whose key limit is ``limit``."""
    url = create_database(tmp_path)
    server = ServerProcess(url, tmp_path, WAITPOINT_RATE_LIMIT_API_KEY=limit).start()
    try:
        headers = {"Authorization": f"Bearer {server.new_key()}"}

        def request(_):
            return httpx.get(server.url + TOKENS, headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(10) as pool:
            return list(pool.map(request, range(requests)))
    finally:
        server.stop()
        drop_database(url)


@pytest.mark.slow
def test_the_workers_of_a_server_share_the_counts(tmp_path):
    statuses = statuses_from_a_server(tmp_path, "20/minute", 30)
    assert sorted(statuses) == [200] * 20 + [429] * 10


@pytest.mark.slow
def test_the_workers_of_a_server_never_let_more_than_the_limit_through_with_leases(tmp_path):
    statuses = statuses_from_a_server(tmp_path, "400/minute", 500)
    # Leases of at most 8: each worker may end holding up to 7 it never used.
    assert 400 - 2 * 7 <= statuses.count(200) <= 400
    assert statuses.count(429) == 500 - statuses.count(200)


def test_a_process_writes_the_shared_counter_once_per_lease(app_factory):
    app, api, key = build(app_factory, api_key="500/minute")
    limiter = app.extensions["waitpoint_ratelimit"]
    item = limiter.limits[API_KEY][0]
    counter = item.key_for(API_KEY, hash_api_key(key))
    assert lease_size(item) == 10
    writes = []
    for _ in range(106):
        before = limiter.storage.get(counter)
        assert api.get(TOKENS).status_code == 200
        if limiter.storage.get(counter) != before:
            writes.append(limiter.storage.get(counter) - before)
    # One request, then leases doubling up to 1/50 of the limit.
    assert writes == [1, 2, 4, 8] + [10] * 10
    assert limiter.storage.get(counter) == 115


def test_leases_shrink_to_single_requests_near_the_limit(app_factory):
    app, api, key = build(app_factory, api_key="200/minute")  # leases of at most 4
    limiter = app.extensions["waitpoint_ratelimit"]
    counter = limiter.limits[API_KEY][0].key_for(API_KEY, hash_api_key(key))
    statuses = [api.get(TOKENS).status_code for _ in range(201)]
    assert statuses == [200] * 200 + [429]  # one process: exactly the limit, no lease lost
    assert limiter.storage.get(counter) <= 201


def test_leases_of_two_instances_never_let_more_than_the_limit_through(app_factory):
    first, api, key = build(app_factory, api_key="200/minute")  # leases of 4
    second = Api(app_factory(WAITPOINT_RATE_LIMIT_API_KEY="200/minute").test_client(), key)
    statuses = [client.get(TOKENS).status_code for _ in range(130) for client in (api, second)]
    assert statuses.count(200) <= 200
    assert statuses.count(200) >= 200 - 4  # at most one lease of the other left unused
    assert set(statuses) == {200, 429}


def test_small_limits_are_counted_request_by_request(app_factory):
    app, api, _ = build(app_factory, api_key="99/minute")
    assert lease_size(app.extensions["waitpoint_ratelimit"].limits[API_KEY][0]) == 1


def test_the_counters_stay_out_of_the_durable_write_path(app, api):
    api.get(TOKENS)
    with app.app_context():
        if on_postgresql():
            persistence = db.session.execute(
                text("SELECT relpersistence FROM pg_class WHERE relname = 'rate_limits'")
            ).scalar()
            assert persistence == "u"  # UNLOGGED: no WAL
            return
        main = db.session.execute(text("SELECT count(*) FROM rate_limits")).scalar()
        path = db.engine.url.database + "-ratelimit"
    assert main == 0  # SQLite: a file of their own, not the main database's writers
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM rate_limits").fetchone()[0] == 1


def test_a_counter_restarts_when_its_window_ends(app):
    storage = app.extensions["waitpoint_ratelimit"].storage
    assert [storage.incr("k", 1) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3
    assert time.time() < storage.get_expiry("k") <= time.time() + 1
    time.sleep(1.05)
    assert storage.get("k") == 0
    assert storage.incr("k", 1) == 1
    storage.clear("k")
    assert storage.get("k") == 0


@pytest.mark.parametrize("broken", ["sqlite", "postgresql"])
def test_a_failing_storage_refuses_nothing_and_logs_once(app_factory, tmp_path, caplog, broken):
    app, api, _ = build(app_factory, api_key="1/minute", callback="1/minute")
    limiter = app.extensions["waitpoint_ratelimit"]
    storage = (
        SqliteCounters(str(tmp_path))  # a directory: cannot be opened
        if broken == "sqlite"
        else PostgresCounters("postgresql+psycopg://postgres@127.0.0.1:1/none")  # nobody there
    )
    app.extensions["waitpoint_ratelimit"] = Limiter(storage, limiter.limits, app.logger)
    try:
        token = api.create()
        for _ in range(3):
            assert api.get(TOKENS).status_code == 200
            assert api.client.post(callback_path(token), json={}).status_code == 200
    finally:
        storage.close()
    warnings = [r for r in caplog.records if "rate limits not applied" in r.getMessage()]
    assert len(warnings) == 1  # at most once a minute, not once a request


# Configuration ---------------------------------------------------------------------------


def test_limits_can_be_turned_off(app_factory):
    app = app_factory(WAITPOINT_RATE_LIMITS=False, WAITPOINT_RATE_LIMIT_API_KEY="1/minute")
    with app.app_context():
        api = Api(app.test_client(), create_api_key("alpha"))
    for _ in range(3):
        assert api.get(TOKENS).status_code == 200
    assert from_environment_with(WAITPOINT_RATE_LIMITS="off")["WAITPOINT_RATE_LIMITS"] is False


def test_the_defaults_are_generous_and_each_limit_is_configurable():
    config = from_environment_with(WAITPOINT_RATE_LIMIT_CALLBACK="10/second;600/minute")
    assert config["WAITPOINT_RATE_LIMITS"] is True
    assert config["WAITPOINT_RATE_LIMIT_API_KEY"] == "3000/minute"
    assert config["WAITPOINT_RATE_LIMIT_API_KEY_FAILURES"] == "60/minute"
    assert config["WAITPOINT_RATE_LIMIT_CALLBACK"] == "10/second;600/minute"
    assert config["WAITPOINT_RATE_LIMIT_CALLBACK_FAILURES"] == "60/minute"


@pytest.mark.parametrize("value", ["lots", "0/minute", "10 per fortnight", "-5/second"])
def test_a_malformed_limit_stops_start_up_naming_it(value):
    with pytest.raises(ConfigError, match="WAITPOINT_RATE_LIMIT_CALLBACK_FAILURES"):
        from_environment_with(WAITPOINT_RATE_LIMIT_CALLBACK_FAILURES=value)
