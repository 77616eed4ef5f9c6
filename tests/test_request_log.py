"""Structured logs: with WAITPOINT_LOG_FORMAT=json one JSON line per request (and per
other record), with a request id echoed as X-Request-ID; never a secret or an output."""

from __future__ import annotations

import json
import logging
import re
import time

import httpx
import pytest

from app.config import ConfigError, from_environment

from .support import TOKENS, Api, ServerProcess, create_database, drop_database

OUTPUT_MARKER = "output-that-must-stay-private"
QUERY_MARKER = "query-that-must-stay-private"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def json_lines(err: str) -> list[dict]:
    """Every line written to stderr, each of which must be one JSON object."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def requests_logged(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e["message"] == "request"]


@pytest.fixture
def json_app(app_factory):
    # JSON mode sets up the process's "app" logger (outside `waitpoint serve`): put it back.
    logger = logging.getLogger("app")
    handlers, level = logger.handlers[:], logger.level
    yield app_factory(WAITPOINT_LOG_FORMAT="json")
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture
def json_api(json_app, api_key):
    return Api(json_app.test_client(), api_key)


def test_each_request_is_one_json_line_with_its_route_and_no_secrets(
    json_app, json_api, api_key, capsys
):
    capsys.readouterr()
    token = json_api.create(timeout="1h", title="t")
    callback = "/api/" + token["url"].split("/api/", 1)[1]
    client = json_app.test_client()
    assert client.post(callback, json={"secret": OUTPUT_MARKER}).status_code == 200
    json_api.retrieve(token["id"])
    assert client.get(f"/api/v1/nothing?key={QUERY_MARKER}").status_code == 404
    err = capsys.readouterr().err

    logged = requests_logged(json_lines(err))
    assert [(e["method"], e["route"], e["status"]) for e in logged] == [
        ("POST", TOKENS, 200),
        ("POST", "/api/v1/waitpoints/tokens/<token_id>/callback/<signature>", 200),
        ("GET", "/api/v1/waitpoints/tokens/<token_id>", 200),
        ("GET", "unmatched", 404),
    ]
    for entry in logged:
        assert {"time", "level", "request_id", "duration_ms", "remote_addr"} <= set(entry)
        assert entry["level"] == "info" and entry["duration_ms"] >= 0
    project = logged[0]["project"]
    assert isinstance(project, int)
    assert logged[2]["project"] == project and logged[2]["token"] == token["id"]
    assert logged[1]["token"] == token["id"] and "project" not in logged[1]
    # Never the API key, the callback URL's signature, the output, or a query string.
    signature = token["url"].rsplit("/", 1)[1]
    for secret in (api_key, signature, OUTPUT_MARKER, QUERY_MARKER, "Bearer"):
        assert secret not in err


def test_an_incoming_request_id_is_kept_and_echoed(json_app, capsys):
    capsys.readouterr()
    response = json_app.test_client().get("/healthz", headers={"X-Request-ID": "trace-42/a:b"})
    assert response.headers["X-Request-ID"] == "trace-42/a:b"
    (entry,) = requests_logged(json_lines(capsys.readouterr().err))
    assert entry["request_id"] == "trace-42/a:b"


@pytest.mark.parametrize(
    "incoming", ["x" * 129, "two words", "new\tline", "caf\u00e9", "<script>{}</script>\x7f"]
)
def test_an_unreasonable_request_id_is_replaced(json_app, incoming):
    response = json_app.test_client().get("/healthz", headers={"X-Request-ID": incoming})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_every_response_gets_a_request_id_including_errors(json_app, capsys):
    def boom():
        raise RuntimeError("something broke")

    json_app.add_url_rule("/api/v1/boom", "boom", boom)
    client = json_app.test_client()
    capsys.readouterr()
    responses = [
        client.get("/api/v1/nothing"),
        client.delete(TOKENS),
        client.get(TOKENS),
        client.get("/approve/waitpoint_x/bad-signature/card"),
        client.get("/api/v1/boom"),
    ]
    assert [r.status_code for r in responses] == [404, 405, 401, 404, 500]
    ids = [r.headers["X-Request-ID"] for r in responses]
    assert all(GENERATED_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)

    entries = json_lines(capsys.readouterr().err)
    assert [e["request_id"] for e in requests_logged(entries)] == ids
    # The unexpected error is a JSON line too, traceback included, with the request's id.
    (error,) = [e for e in entries if e["level"] == "error"]
    assert error["request_id"] == ids[-1]
    assert "RuntimeError: something broke" in error["exception"]


def test_text_logs_stay_as_they_were_but_still_echo_a_request_id(client, capsys):
    capsys.readouterr()
    response = client.get("/healthz")
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    assert "request" not in capsys.readouterr().err


def test_a_malformed_log_format_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="WAITPOINT_LOG_FORMAT"):
        from_environment(tmp_path, {"SECRET_KEY": "x" * 32, "WAITPOINT_LOG_FORMAT": "yaml"})


@pytest.mark.slow
def test_waitpoint_serve_writes_only_json_lines(tmp_path):
    url = create_database(tmp_path)
    server = ServerProcess(url, tmp_path, WAITPOINT_LOG_FORMAT="json").start()
    try:
        key = server.new_key("logs")
        auth = {"Authorization": f"Bearer {key}"}
        base = server.url + TOKENS
        due = httpx.post(base, json={"timeout": "1s"}, headers=auth).json()
        token = httpx.post(base, json={}, headers=auth).json()
        answer = httpx.post(token["url"], json={"secret": OUTPUT_MARKER})
        assert answer.json()["applied"] is True
        assert answer.headers["X-Request-ID"]
        deadline = time.monotonic() + 10
        while "timed out 1 token(s)" not in server.log_path.read_text():  # by a sweep
            assert time.monotonic() < deadline, "the sweep never timed the token out"
            time.sleep(0.1)
        assert httpx.get(f"{base}/{due['id']}", headers=auth).json()["status"] == "TIMED_OUT"
    finally:
        server.stop()
        drop_database(url)

    log = server.log_path.read_text()
    # The migration's, gunicorn's, the app's, the sweep's: every line from the first.
    entries = [json.loads(line) for line in log.splitlines()]
    assert any(e["logger"].startswith("alembic") for e in entries)
    assert any(e["message"].startswith("Waitpoint listening") for e in entries)
    assert any(e["message"] == "timed out 1 token(s)" for e in entries)
    assert any(e["message"].startswith("Booting worker") for e in entries)
    callbacks = [e for e in entries if e.get("route", "").endswith("/callback/<signature>")]
    assert [e["status"] for e in callbacks] == [200]
    assert callbacks[0]["request_id"] == answer.headers["X-Request-ID"]
    for secret in (key, token["url"].rsplit("/", 1)[1], OUTPUT_MARKER):
        assert secret not in log
