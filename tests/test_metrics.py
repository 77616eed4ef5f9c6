"""Prometheus metrics at /metrics: requests by route, tokens, the sweep, waits, the writer
queue; right across the workers of `waitpoint serve`; optionally behind a bearer token."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from app.config import ConfigError, from_environment
from app.domain.timeutil import utcnow
from app.extensions import db
from app.infra import metrics
from app.infra.scheduler import sweep_once
from app.models import Project, Token

from .support import (
    TOKENS,
    Api,
    ServerProcess,
    callback_path,
    on_postgresql,
    server_on_new_database,
)

CALLBACK_ROUTE = "/api/v1/waitpoints/tokens/<token_id>/callback/<signature>"


def scrape(client, **headers) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.text


def value(exposition: str, metric: str, **labels) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == metric and sample.labels == labels:
                return sample.value
    return 0.0


def test_requests_are_counted_by_route_never_by_their_path(client, api):
    before = scrape(client)
    token = api.create(timeout="1h")
    assert client.post(callback_path(token), json={"ok": True}).status_code == 200
    after = scrape(client)

    callback = {"method": "POST", "route": CALLBACK_ROUTE}
    create = {"method": "POST", "route": "/api/v1/waitpoints/tokens"}
    for labels in (callback, create):
        counted = "waitpoint_http_requests_total"
        assert (
            value(after, counted, **labels, status="200")
            - value(before, counted, **labels, status="200")
            == 1
        )
        timed = "waitpoint_http_request_duration_seconds_count"
        assert value(after, timed, **labels) - value(before, timed, **labels) == 1
    # The callback URL's signature is a secret, and ids would be unbounded label values.
    signature = token["url"].rsplit("/", 1)[1]
    assert signature not in after
    assert token["id"] not in after


def test_unknown_paths_and_methods_share_one_series(client):
    name = "waitpoint_http_requests_total"
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    odd = {"method": "OTHER", "route": "unmatched", "status": "404"}
    before = scrape(client)
    paths = [f"/no/such/{uuid.uuid4().hex}" for _ in range(3)]
    for path in paths:
        assert client.get(path).status_code == 404
    assert client.open(paths[0], method="BREW").status_code == 404
    after = scrape(client)
    assert value(after, name, **labels) - value(before, name, **labels) == 3
    assert value(after, name, **odd) - value(before, name, **odd) == 1
    assert not any(path in after for path in paths)
    assert "BREW" not in after


def test_token_counters_add_up_per_project(client):
    before = scrape(client)
    metrics.token_created(901)
    metrics.token_created(901)
    metrics.token_completed(901, "callback")
    metrics.tokens_timed_out({901: 3, 902: 0})
    metrics.tokens_timed_out({902: 1}, by="operator")
    after = scrape(client)

    def added(metric, **labels):
        return value(after, metric, **labels) - value(before, metric, **labels)

    assert added("waitpoint_tokens_created_total", project="901") == 2
    assert added("waitpoint_tokens_completed_total", project="901", source="callback") == 1
    assert added("waitpoint_tokens_timed_out_total", project="901", by="sweep") == 3
    assert added("waitpoint_tokens_timed_out_total", project="902", by="sweep") == 0
    assert added("waitpoint_tokens_timed_out_total", project="902", by="operator") == 1


def test_the_lifecycle_counts_tokens_created_completed_and_timed_out(app, client, api):
    project = str(_project_ids(app)["alpha"])
    before = scrape(client)
    done = api.create(timeout="1h", idempotencyKey="k")
    api.create(timeout="1h", idempotencyKey="k")  # a replay: not a new token
    late = api.create(timeout="1h")
    client.post(callback_path(done), json={})
    _move_deadline(app, late["id"], seconds_ago=1)
    assert sweep_once(app) == 1
    after = scrape(client)

    def added(metric, **labels):
        return value(after, metric, project=project, **labels) - value(
            before, metric, project=project, **labels
        )

    assert added("waitpoint_tokens_created_total") == 2
    assert added("waitpoint_tokens_completed_total", source="callback") == 1
    assert added("waitpoint_tokens_timed_out_total", by="sweep") == 1


def _project_ids(app) -> dict[str, int]:
    with app.app_context():
        return {p.name: p.id for p in db.session.execute(select(Project)).scalars()}


def test_waiting_tokens_are_counted_per_project_from_the_database(app, client, api, other_api):
    tokens = [api.create(timeout="1h") for _ in range(3)]
    other_api.create()  # no deadline: waits for ever
    api.post(f"{TOKENS}/{tokens[0]['id']}/complete", json={"data": 1})
    ids = _project_ids(app)

    exposition = scrape(client)
    alpha, beta = str(ids["alpha"]), str(ids["beta"])
    assert value(exposition, "waitpoint_tokens_waiting", project=alpha) == 2
    assert value(exposition, "waitpoint_tokens_waiting", project=beta) == 1
    assert value(exposition, "waitpoint_project_info", project=alpha, name="alpha") == 1
    assert value(exposition, "waitpoint_database_up") == 1


def _move_deadline(app, token_id: str, seconds_ago: float) -> None:
    with app.app_context():
        db.session.execute(
            update(Token)
            .where(Token.public_id == token_id.removeprefix("waitpoint_"))
            .values(timeout_at=utcnow() - timedelta(seconds=seconds_ago))
        )
        db.session.commit()


def test_the_sweep_lag_shows_overdue_tokens_until_a_sweep_ends_them(app, client, api):
    token = api.create(timeout="1h")
    _move_deadline(app, token["id"], seconds_ago=30)

    late = scrape(client)
    assert value(late, "waitpoint_tokens_overdue") == 1
    assert 30 <= value(late, "waitpoint_sweep_lag_seconds") < 60

    assert sweep_once(app) == 1
    swept = scrape(client)
    assert value(swept, "waitpoint_tokens_overdue") == 0
    assert value(swept, "waitpoint_sweep_lag_seconds") == 0
    sweeps = "waitpoint_sweep_duration_seconds_count"
    assert value(swept, sweeps) - value(late, sweeps) == 1


def test_a_scrape_answers_while_the_database_does_not(app_factory, tmp_path):
    app = app_factory(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    exposition = scrape(app.test_client())
    assert value(exposition, "waitpoint_database_up") == 0
    assert "waitpoint_tokens_waiting" not in exposition
    assert "waitpoint_http_requests_total" in exposition  # the process's own still are


def test_long_poll_waiters_are_counted_while_they_wait(app, client, api, api_key):
    token = api.create(timeout="1h")
    waiter = Api(app.test_client(), api_key)
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(waiter.get(f"{TOKENS}/{token['id']}/wait?timeout=20s"))
    )
    before = value(scrape(client), "waitpoint_long_poll_waiters")
    thread.start()
    deadline = time.monotonic() + 10
    while value(scrape(client), "waitpoint_long_poll_waiters") != before + 1:
        assert time.monotonic() < deadline, "the wait was never counted"
        time.sleep(0.02)
    api.post(f"{TOKENS}/{token['id']}/complete", json={})
    thread.join(10)
    assert answers and answers[0].get_json()["status"] == "COMPLETED"
    assert value(scrape(client), "waitpoint_long_poll_waiters") == before


def test_writes_record_their_turn_in_the_writer_queue_on_sqlite_only(client, api):
    name = "waitpoint_sqlite_writer_wait_seconds_count"
    before = value(scrape(client), name)
    api.create()
    # PostgreSQL has no writer queue: its writes wait on row locks only.
    assert (value(scrape(client), name) > before) is not on_postgresql()


BEARER = "metrics-token-0123456789"


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer wrong-token-0123456789", 401),
        (f"Basic {BEARER}", 401),
        (f"Bearer {BEARER}", 200),
    ],
)
def test_a_metrics_token_is_required_when_configured(app_factory, header, status):
    client = app_factory(WAITPOINT_METRICS_TOKEN=BEARER).test_client()
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "waitpoint_" not in response.text


def test_metrics_can_be_turned_off(app_factory):
    client = app_factory(WAITPOINT_METRICS=False).test_client()
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize(
    "environ",
    [
        {"WAITPOINT_METRICS": "maybe"},
        {"WAITPOINT_METRICS_TOKEN": "short"},
        {"WAITPOINT_METRICS_TOKEN": "has a space in the middle"},
    ],
)
def test_a_malformed_metrics_setting_stops_start_up(tmp_path, environ):
    with pytest.raises(ConfigError, match=next(iter(environ))):
        from_environment(tmp_path, {"SECRET_KEY": "x" * 32, **environ})


# -- a real `waitpoint serve` with two workers -------------------------------------------


def _served_by(server: ServerProcess, route: str) -> dict[int, int]:
    """Requests per worker pid for a route, from the server's JSON log lines."""
    served: dict[int, int] = {}
    for line in server.log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("message") == "request" and entry.get("route") == route:
                served[entry["pid"]] = served.get(entry["pid"], 0) + 1
    return served


def _healthz_count(server: ServerProcess) -> float:
    exposition = httpx.get(server.url + "/metrics", headers={"Connection": "close"}).text
    return value(
        exposition, "waitpoint_http_requests_total", method="GET", route="/healthz", status="200"
    )


@pytest.fixture
def server(tmp_path):
    with server_on_new_database(tmp_path, WAITPOINT_LOG_FORMAT="json") as server:
        yield server


@pytest.mark.slow
def test_every_worker_counts_into_what_any_worker_reports(server):
    # New connections until both workers have answered some (each logs its pid).
    sent = 0
    while len(_served_by(server, "/healthz")) < 2:
        assert sent < 2000, "one worker answered everything"
        for _ in range(20):
            assert httpx.get(server.url + "/healthz").status_code == 200
        sent += 20
    total = sum(_served_by(server, "/healthz").values())  # with ServerProcess.start's probes

    # Whichever worker answers a scrape reports the sum of both.
    for _ in range(100):
        assert _healthz_count(server) == total
        if len(_served_by(server, "/metrics")) == 2:
            break
    assert len(_served_by(server, "/metrics")) == 2, "one worker answered every scrape"

    # A worker that dies keeps its counts; gunicorn starts another in its place.
    booted = server.log_path.read_text().count("Booting worker")
    os.kill(next(iter(_served_by(server, "/healthz"))), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while server.log_path.read_text().count("Booting worker") == booted:
        assert time.monotonic() < deadline, "no new worker"
        time.sleep(0.1)
    for _ in range(10):
        assert _healthz_count(server) == total
