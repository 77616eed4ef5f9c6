"""GET /api/v1/waitpoints/tokens/{id}/wait: the long poll."""

import json
import threading
import time
from datetime import timedelta

import pytest

from app.domain import lifecycle
from app.domain.timeutil import utcnow

from .support import TOKENS, Api, error_of


def wait_in_thread(app, key, token_id, timeout="10s"):
    result = {}

    def run():
        api = Api(app.test_client(), key)
        started = time.monotonic()
        response = api.get(f"{TOKENS}/{token_id}/wait", query_string={"timeout": timeout})
        result.update(
            status=response.status_code,
            body=response.get_json(),
            seconds=time.monotonic() - started,
        )

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_decided_token_answers_at_once(api):
    token = api.create()
    api.post(f"{TOKENS}/{token['id']}/complete", json={"data": {"ok": 1}})
    started = time.monotonic()
    body = api.get(f"{TOKENS}/{token['id']}/wait?timeout=30s").get_json()
    assert time.monotonic() - started < 1
    assert body["status"] == "COMPLETED" and json.loads(body["output"]) == {"ok": 1}


def test_a_completion_wakes_the_waiter_at_once(app, api, api_key):
    token = api.create()
    thread, result = wait_in_thread(app, api_key, token["id"])
    time.sleep(0.3)
    assert thread.is_alive()
    api.post(f"{TOKENS}/{token['id']}/complete", json={"data": "go"})
    thread.join(5)
    assert result["status"] == 200 and result["body"]["status"] == "COMPLETED"
    assert json.loads(result["body"]["output"]) == "go"
    assert result["seconds"] < 1.5


def test_the_window_ends_with_the_token_still_waiting(api):
    token = api.create()
    started = time.monotonic()
    body = api.get(f"{TOKENS}/{token['id']}/wait?timeout=1s").get_json()
    assert 0.9 < time.monotonic() - started < 3
    assert body["status"] == "WAITING" and body["id"] == token["id"]


def test_the_tokens_deadline_ends_the_wait_as_timed_out(api):
    deadline = (utcnow() + timedelta(seconds=1)).isoformat()
    token = api.create(timeout=deadline)
    started = time.monotonic()
    body = api.get(f"{TOKENS}/{token['id']}/wait?timeout=20s").get_json()
    assert time.monotonic() - started < 3
    assert body["status"] == "TIMED_OUT" and body["outputIsError"] is True


def test_a_sweep_wakes_waiters(app, api, api_key):
    token = api.create(timeout="1h")
    thread, result = wait_in_thread(app, api_key, token["id"])
    time.sleep(0.3)
    with app.app_context():
        lifecycle.expire_due(utcnow() + timedelta(hours=2))
    thread.join(5)
    assert result["body"]["status"] == "TIMED_OUT"
    assert result["seconds"] < 2


@pytest.mark.parametrize("timeout", ["61s", "2m", "soon", "-1s"])
def test_the_window_is_at_most_60_seconds(api, timeout):
    token = api.create()
    response = api.get(f"{TOKENS}/{token['id']}/wait", query_string={"timeout": timeout})
    assert error_of(response, 400).startswith("timeout:")


def test_waiting_needs_the_tokens_project(api, other_api):
    token = api.create()
    assert error_of(other_api.get(f"{TOKENS}/{token['id']}/wait?timeout=1s"), 404)


@pytest.mark.slow
def test_waiters_beyond_capacity_answer_at_once_and_leaving_frees_a_slot(tmp_path):
    """One worker holding at most 2 waiters: a third is answered at once; a client that
    hangs up frees its slot within about a second."""
    import httpx

    from .support import ServerProcess, create_database, drop_database

    url = create_database(tmp_path)
    server = ServerProcess(
        url, tmp_path, WAITPOINT_WORKERS="1", WAITPOINT_THREADS="40", WAITPOINT_MAX_WAITERS="2"
    ).start()
    try:
        key = server.new_key("cap")
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=auth) as http:
            token = http.post(TOKENS, json={}).json()
            wait_path = f"{TOKENS}/{token['id']}/wait?timeout=20s"

            def timed_wait(timeout="2s"):
                started = time.monotonic()
                body = http.get(f"{TOKENS}/{token['id']}/wait?timeout={timeout}").json()
                return body["status"], time.monotonic() - started

            # Two clients, at once, that give up after 0.5 s and close their connections.
            def impatient():
                with (
                    httpx.Client(
                        base_url=server.url, headers=auth, timeout=httpx.Timeout(5, read=0.5)
                    ) as client,
                    pytest.raises(httpx.ReadTimeout),
                ):
                    client.get(wait_path)

            threads = [threading.Thread(target=impatient) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            # Their server-side waits are still held for up to a second: at capacity.
            assert timed_wait()[1] < 1.0
            time.sleep(1.5)  # the server notices the closed sockets
            status, seconds = timed_wait()
            assert status == "WAITING" and 1.8 < seconds < 4
    finally:
        server.stop()
        drop_database(url)


@pytest.mark.slow
def test_stopping_the_server_answers_open_long_polls_at_once(tmp_path):
    import httpx

    from .support import ServerProcess, create_database, drop_database

    url = create_database(tmp_path)
    server = ServerProcess(url, tmp_path).start()
    try:
        key = server.new_key("stop")
        auth = {"Authorization": f"Bearer {key}"}
        token = httpx.post(server.url + TOKENS, json={}, headers=auth).json()
        answers = []

        def wait():
            answers.append(
                httpx.get(
                    f"{server.url}{TOKENS}/{token['id']}/wait",
                    params={"timeout": "50s"},
                    headers=auth,
                    timeout=60,
                )
            )

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(1.0)  # the long poll is held
        started = time.monotonic()
        server.stop()
        stopped = time.monotonic() - started
        waiter.join(10)
        assert stopped < 5, f"the server took {stopped:.1f} s to stop"
        assert answers[0].status_code == 200
        assert answers[0].json()["status"] == "WAITING"  # as it is: the client asks again
    finally:
        server.stop()
        drop_database(url)
