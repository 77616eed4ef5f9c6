"""The Python SDK against live server processes, not mocks."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import waitpoint
from waitpoint import (
    AsyncWaitpoint,
    AuthenticationError,
    ConnectionFailed,
    NotFoundError,
    ValidationError,
    WaitDeadlineExceeded,
    Waitpoint,
    WaitpointTimeoutError,
)

from .support import (
    ServerProcess,
    create_database,
    drop_database,
    free_port,
    server_on_new_database,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sdk(live_server, live_key):
    with Waitpoint(live_server.url, live_key) as client:
        yield client


def complete_later(url, body, delay=0.5):
    stamp = {}

    def run():
        time.sleep(delay)
        stamp["sent"] = time.monotonic()
        response = httpx.post(url, json=body)
        stamp["acked"] = time.monotonic()
        assert response.json()["applied"] is True

    thread = threading.Thread(target=run)
    thread.start()
    return thread, stamp


def test_for_token_returns_the_output_within_a_second_of_the_callback(sdk):
    token = sdk.create_token(timeout="1h", tags=["sdk"], title="Refund?", details={"n": 1})
    thread, stamp = complete_later(token.url, {"status": "approved"})
    result = sdk.for_token(token)
    returned = time.monotonic()
    thread.join()
    assert result.ok is True and result.error is None
    assert result.output == {"status": "approved"}
    assert result.unwrap() == {"status": "approved"}
    assert returned - stamp["sent"] < 1.0
    assert result.token.status == "COMPLETED" and result.token.title == "Refund?"


def test_a_timed_out_token_is_not_ok_and_unwrap_raises(sdk):
    token = sdk.create_token(timeout="1s")
    result = sdk.for_token(token)
    assert result.ok is False and result.output is None
    assert isinstance(result.error, WaitpointTimeoutError)
    assert str(result.error).startswith("Waitpoint timed out at ")
    with pytest.raises(WaitpointTimeoutError):
        result.unwrap()


def test_a_client_deadline_is_its_own_error(sdk):
    token = sdk.create_token(timeout="1h")
    started = time.monotonic()
    with pytest.raises(WaitDeadlineExceeded):
        sdk.for_token(token, deadline=1.5)
    assert 1.4 < time.monotonic() - started < 4
    assert sdk.retrieve_token(token).status == "WAITING"


def test_complete_retrieve_and_idempotency(sdk):
    token = sdk.create_token(idempotency_key="sdk-once", idempotency_key_ttl="1h")
    again = sdk.create_token(idempotency_key="sdk-once")
    assert again.id == token.id and again.is_cached is True
    first = sdk.complete_token(token, {"status": "approved"})
    second = sdk.complete_token(token.id, {"status": "late"})
    assert (first.applied, second.applied, second.status) == (True, False, "COMPLETED")
    details = sdk.retrieve_token(token)
    assert details.output == {"status": "approved"}
    assert details.idempotency_key == "sdk-once" and details.completed_at is not None


def test_list_tokens_iterates_across_pages(sdk):
    tag = f"pages-{time.monotonic_ns()}"
    made = [sdk.create_token(tags=[tag]).id for _ in range(5)]
    sdk.complete_token(made[0], 1)
    listed = [t.id for t in sdk.list_tokens(tags=[tag], page_size=2)]
    assert listed == made[::-1]
    waiting = [t.id for t in sdk.list_tokens(tags=tag, status="WAITING", page_size=2)]
    assert waiting == made[:0:-1]


def test_errors_map_to_exceptions(sdk, live_server):
    with pytest.raises(NotFoundError) as missing:
        sdk.retrieve_token("waitpoint_nope")
    assert missing.value.status == 404
    with pytest.raises(ValidationError) as too_many:
        sdk.create_token(tags=[f"t{i}" for i in range(11)])
    assert too_many.value.status == 422 and "tags" in too_many.value.message
    with pytest.raises(ValidationError, match="timeout"):
        sdk.create_token(timeout="soon")
    with Waitpoint(live_server.url, "wp_wrong") as bad, pytest.raises(AuthenticationError):
        bad.create_token()


def test_connection_errors_are_retried_then_raised():
    client = Waitpoint(f"http://127.0.0.1:{free_port()}", "wp_x", max_retries=2)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed):
        client.retrieve_token("waitpoint_x")
    client.close()
    assert time.monotonic() - started < 5


def test_the_module_level_wait_uses_configure(live_server, live_key):
    waitpoint.configure(base_url=live_server.url, api_key=live_key)
    try:
        token = waitpoint.wait.create_token(timeout="1h")
        thread, _ = complete_later(token.url, {"ok": True}, delay=0.2)
        assert waitpoint.wait.for_token(token).unwrap() == {"ok": True}
        thread.join()
    finally:
        waitpoint.configure()


def test_the_async_client_does_the_same(live_server, live_key):
    async def scenario():
        async with AsyncWaitpoint(live_server.url, live_key) as client:
            token = await client.create_token(timeout="1h", tags=["async"])
            waiter = asyncio.create_task(client.for_token(token))
            await asyncio.sleep(0.3)
            sent = time.monotonic()
            async with httpx.AsyncClient() as http:
                await http.post(token.url, json={"async": True})
            result = await waiter
            assert time.monotonic() - sent < 1.0
            assert result.unwrap() == {"async": True}

            quick = await client.create_token(timeout="1s")
            timed_out = await client.for_token(quick)
            assert timed_out.ok is False and isinstance(timed_out.error, WaitpointTimeoutError)
            with pytest.raises(WaitDeadlineExceeded):
                await client.for_token(await client.create_token(), deadline=1)
            listed = [t.id async for t in client.list_tokens(tags="async", page_size=1)]
            assert listed == [token.id]
            with pytest.raises(NotFoundError):
                await client.retrieve_token("waitpoint_nope")

        waitpoint.configure(base_url=live_server.url, api_key=live_key)
        try:
            made = await waitpoint.aio.wait.create_token()
            assert (await waitpoint.aio.wait.retrieve_token(made)).status == "WAITING"
        finally:
            waitpoint.configure()

    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


def test_a_waiter_on_one_process_wakes_when_another_completes(tmp_path):
    """Two servers on one database (PostgreSQL in the PG run): LISTEN/NOTIFY, or SQLite's
    data_version poll, carries the completion across processes."""
    url = create_database(tmp_path)
    first = ServerProcess(url, tmp_path, WAITPOINT_WORKERS="1").start()
    second = ServerProcess(url, tmp_path, WAITPOINT_WORKERS="1").start()
    try:
        key = first.new_key("two")
        with Waitpoint(first.url, key) as one, Waitpoint(second.url, key) as two:
            for _ in range(3):
                token = one.create_token(timeout="1h")
                box = {}
                waiter = threading.Thread(
                    target=lambda token=token, box=box: box.update(
                        result=one.for_token(token), at=time.monotonic()
                    )
                )
                waiter.start()
                time.sleep(0.5)
                sent = time.monotonic()
                assert two.complete_token(token, {"from": "second"}).applied is True
                waiter.join(5)
                assert box["result"].unwrap() == {"from": "second"}
                assert box["at"] - sent < 1.0
    finally:
        first.stop()
        second.stop()
        drop_database(url)


def test_the_refund_example_runs_end_to_end(live_server, live_key):
    import os
    import subprocess
    import sys

    from .support import ROOT

    env = {**os.environ, "WAITPOINT_URL": live_server.url, "WAITPOINT_API_KEY": live_key}
    agent = subprocess.Popen(
        [sys.executable, "examples/refund_agent.py", "42", "240"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = agent.stdout.readline()
    assert line.startswith("Waiting for a human. Approval page: http")
    url = line.rsplit(" ", 1)[1].strip()
    httpx.post(url, json={"approved": True, "approver": "Ada", "comment": "ok"})
    out, _ = agent.communicate(timeout=10)
    assert agent.returncode == 0
    assert "Approved by Ada" in out


def test_complete_without_data_leaves_no_output(sdk):
    token = sdk.create_token()
    assert sdk.complete_token(token).applied is True
    assert sdk.retrieve_token(token).raw.get("output") is None
    assert sdk.for_token(token).output is None


def test_times_the_client_cannot_send_are_refused_before_sending(sdk):
    from datetime import datetime, timedelta

    for bad in (timedelta(seconds=-5), 0, datetime(2030, 1, 1)):
        with pytest.raises(ValueError):
            sdk.create_token(timeout=bad)
    with pytest.raises(ValueError):
        list(sdk.list_tokens(from_=datetime(2030, 1, 1)))


def test_for_token_rides_out_a_server_restart(tmp_path):
    url = create_database(tmp_path)
    server = ServerProcess(url, tmp_path, WAITPOINT_WORKERS="1").start()
    try:
        key = server.new_key("restart")
        with Waitpoint(server.url, key, poll_window=2) as client:
            token = client.create_token(timeout="1h")
            box = {}
            waiter = threading.Thread(target=lambda: box.update(result=client.for_token(token)))
            waiter.start()
            time.sleep(0.5)
            server.stop()  # the wait's connection drops; the SDK keeps asking
            time.sleep(3)
            server.start()
            httpx.post(token.url, json={"after": "restart"})
            waiter.join(20)
            assert box["result"].unwrap() == {"after": "restart"}
    finally:
        server.stop()
        drop_database(url)


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    """A server whose per-key limit is tiny, so that the SDK meets it."""
    tmp = tmp_path_factory.mktemp("strict")
    with server_on_new_database(tmp, WAITPOINT_RATE_LIMIT_API_KEY="4 per 2 seconds") as server:
        yield server


def test_the_sdk_waits_as_told_by_a_rate_limit_and_goes_on(strict_server):
    key = strict_server.new_key("strict")
    with Waitpoint(strict_server.url, key, max_retries=3) as client:
        started = time.monotonic()
        tokens = [client.create_token() for _ in range(6)]  # creates too: nothing was done
        assert len({t.id for t in tokens}) == 6
        assert time.monotonic() - started >= 0.5  # it did wait for the window to pass
        thread, _ = complete_later(tokens[0].url, {"ok": True}, delay=0.2)
        assert client.for_token(tokens[0]).output == {"ok": True}
        thread.join()


def test_a_rate_limit_past_the_retries_is_its_own_error(strict_server):
    key = strict_server.new_key("strict-2")
    with (
        Waitpoint(strict_server.url, key, max_retries=0) as client,
        pytest.raises(waitpoint.RateLimited) as caught,
    ):
        for _ in range(6):
            client.create_token()
    assert caught.value.status == 429 and 0 < caught.value.retry_after <= 2
    assert caught.value.message.startswith("API key: too many requests")
