"""The SDK's wait policy (``waitpoint._flow``) driven by hand: no server, no sleeping.

Each flow yields what it would do next (``Send`` a request, ``Sleep`` a while) and is
resumed with an ``httpx.Response``, a transport error, or ``None`` after a sleep; the
clock and the backoff jitter are the test's own.
"""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from waitpoint import (
    APIError,
    AsyncWaitpoint,
    AuthenticationError,
    ConnectionFailed,
    NotFoundError,
    RateLimited,
    ServerError,
    WaitDeadlineExceeded,
    WaitpointTimeoutError,
)
from waitpoint import _common as c
from waitpoint._flow import EARLY, Done, Send, Sleep, for_token, request, resume

from .support import free_port

PATH = "/api/v1/waitpoints/tokens/waitpoint_1"
WAIT = f"{PATH}/wait"


def backoff(attempt: int) -> float:
    """A jitter-free backoff that shows which attempt it was asked about."""
    return 100.0 + attempt


class Clock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reply(status: int, body: dict | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers,
        json={"error": "busy"} if body is None else body,
        request=httpx.Request("GET", f"http://x{PATH}"),
    )


def refused() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


def token(status: str, **fields) -> dict:
    return {
        "id": "waitpoint_1",
        "url": "http://x/wait/abc",
        "status": status,
        "createdAt": "2030-01-01T00:00:00Z",
        **fields,
    }


def start(flow):
    return resume(flow, None)


def call(retry: bool, max_retries: int = 3):
    return request("POST", PATH, retry=retry, max_retries=max_retries, backoff=backoff, json={})


# request: one call and its retries


def test_a_success_is_returned_after_a_single_send():
    flow = request("GET", PATH, retry=True, max_retries=3, params={"a": "1"})
    assert start(flow) == Send("GET", PATH, {"params": {"a": "1"}})
    assert resume(flow, reply(200, {"ok": 1})) == Done({"ok": 1})


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_is_sent_again_after_a_backoff_for_an_idempotent_call(status):
    flow = call(retry=True)
    assert start(flow) == Send("POST", PATH, {"json": {}})
    assert resume(flow, reply(status)) == Sleep(100.0)
    assert resume(flow, None) == Send("POST", PATH, {"json": {}})
    assert resume(flow, reply(status)) == Sleep(101.0)
    assert resume(flow, None) == Send("POST", PATH, {"json": {}})
    assert resume(flow, reply(201, {"id": "waitpoint_1"})) == Done({"id": "waitpoint_1"})


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_ends_a_call_that_may_not_be_repeated(status):
    flow = call(retry=False)
    start(flow)
    with pytest.raises(ServerError) as caught:
        resume(flow, reply(status, {"error": "boom"}))
    assert caught.value.status == status and caught.value.message == "boom"


@pytest.mark.parametrize("retry", [True, False])
@pytest.mark.parametrize("status", [429, 503])
def test_a_rate_limit_or_busy_answer_is_sent_again_after_retry_after_for_every_call(retry, status):
    flow = call(retry=retry)
    start(flow)
    assert resume(flow, reply(status, **{"Retry-After": "2"})) == Sleep(2.0)
    assert resume(flow, None) == Send("POST", PATH, {"json": {}})
    assert resume(flow, reply(status, **{"Retry-After": "0.5"})) == Sleep(0.5)
    assert resume(flow, None) == Send("POST", PATH, {"json": {}})
    assert resume(flow, reply(200, {"done": True})) == Done({"done": True})


def test_a_rate_limit_without_retry_after_backs_off_and_a_long_one_is_capped():
    flow = call(retry=False)
    start(flow)
    assert resume(flow, reply(429)) == Sleep(100.0)
    resume(flow, None)
    assert resume(flow, reply(429, **{"Retry-After": "soon"})) == Sleep(101.0)
    resume(flow, None)
    assert resume(flow, reply(429, **{"Retry-After": "3600"})) == Sleep(60.0)


def test_a_transport_error_is_not_sent_again_for_a_call_that_may_not_be_repeated():
    flow = call(retry=False)
    start(flow)
    error = refused()
    with pytest.raises(ConnectionFailed, match=f"^POST {PATH}: connection refused$") as caught:
        resume(flow, error)
    assert caught.value.__cause__ is error


def test_a_transport_error_is_sent_again_after_a_backoff_for_an_idempotent_call():
    flow = call(retry=True)
    start(flow)
    assert resume(flow, refused()) == Sleep(100.0)
    assert resume(flow, None) == Send("POST", PATH, {"json": {}})
    assert resume(flow, reply(200, {"ok": True})) == Done({"ok": True})


@pytest.mark.parametrize("max_retries", [0, 1, 3])
@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (lambda: reply(500), ServerError),
        (lambda: reply(503), ServerError),
        (lambda: reply(429, **{"Retry-After": "1"}), RateLimited),
        (refused, ConnectionFailed),
    ],
)
def test_an_idempotent_call_is_sent_max_retries_times_again_and_no_more(
    max_retries, outcome, error
):
    flow = call(retry=True, max_retries=max_retries)
    sends = 0
    step = start(flow)
    with pytest.raises(error):
        while True:
            assert isinstance(step, Send)
            sends += 1
            assert isinstance(resume(flow, outcome()), Sleep)
            step = resume(flow, None)
    assert sends == max_retries + 1


def test_a_rate_limit_past_the_retries_carries_retry_after():
    flow = call(retry=False, max_retries=0)
    start(flow)
    with pytest.raises(RateLimited) as caught:
        resume(flow, reply(429, {"error": "slow down"}, **{"Retry-After": "7"}))
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (404, NotFoundError), (409, APIError)]
)
def test_a_client_error_is_never_sent_again(status, error):
    flow = call(retry=True)
    start(flow)
    with pytest.raises(error):
        resume(flow, reply(status, {"error": "no"}))


# for_token: the long poll


def settings(**options) -> c.Settings:
    return c.Settings("http://x", "wp_x", **options)


def wait_for(deadline=None, clock=None, **options):
    return for_token(
        "waitpoint_1",
        settings(**options),
        deadline=deadline,
        clock=clock or Clock(),
        backoff=backoff,
    )


def asks(window: str, read: float, timeout: float = 30.0) -> Send:
    """The wait request for a window of ``window`` held at most ``read`` seconds."""
    options = {"params": {"timeout": window}, "timeout": httpx.Timeout(timeout, read=read)}
    return Send("GET", WAIT, options)


def test_each_wait_asks_for_the_poll_window_and_reads_a_little_longer():
    flow = for_token("waitpoint_1", settings(poll_window=20, timeout=5))
    assert start(flow) == asks("20s", read=35, timeout=5)


def test_the_result_is_returned_once_the_token_is_completed():
    flow = wait_for()
    start(flow)
    done = resume(flow, reply(200, token("COMPLETED", output=json.dumps({"ok": 1}))))
    assert isinstance(done, Done)
    assert done.value.ok is True and done.value.output == {"ok": 1}
    assert done.value.token.status == "COMPLETED"


def test_a_timed_out_token_is_a_result_that_is_not_ok():
    flow = wait_for()
    start(flow)
    body = token("TIMED_OUT", output=json.dumps({"message": "late"}), outputIsError=True)
    done = resume(flow, reply(200, body))
    assert isinstance(done, Done) and done.value.ok is False
    assert isinstance(done.value.error, WaitpointTimeoutError)


def test_a_wait_held_for_its_window_is_followed_by_the_next_at_once():
    clock = Clock()
    flow = wait_for(clock=clock)
    start(flow)
    for _ in range(3):
        clock.now += 30
        assert resume(flow, reply(200, token("WAITING"))) == asks("30s", read=45)


def test_a_wait_that_comes_back_early_pauses_before_the_next():
    clock = Clock()
    flow = wait_for(clock=clock)
    start(flow)
    clock.now += 30 - EARLY - 0.01
    assert resume(flow, reply(200, token("WAITING"))) == Sleep(EARLY)
    assert resume(flow, None) == asks("30s", read=45)


@pytest.mark.parametrize("deadline", [45.5, timedelta(seconds=45.5)])
def test_the_window_is_clamped_to_what_is_left_of_the_deadline(deadline):
    clock = Clock()
    flow = wait_for(deadline, clock=clock)
    assert start(flow) == asks("30s", read=45)
    clock.now += 30
    # 15.5 s are left: asked for in whole seconds (rounded up), read for 15.5 s plus 15.
    assert resume(flow, reply(200, token("WAITING"))) == asks("16s", read=30.5)
    clock.now += 15.5
    with pytest.raises(WaitDeadlineExceeded, match="after 45.5s$"):
        resume(flow, reply(200, token("WAITING")))


def test_the_deadline_ends_the_wait_with_its_own_error():
    clock = Clock()
    flow = wait_for(10, clock=clock)
    assert start(flow) == asks("10s", read=25)
    clock.now += 10
    with pytest.raises(WaitDeadlineExceeded, match="^waitpoint_1 still waiting after 10s$"):
        resume(flow, reply(200, token("WAITING")))


def test_a_deadline_already_past_sends_nothing():
    flow = wait_for(timedelta(0))
    with pytest.raises(WaitDeadlineExceeded):
        start(flow)


@pytest.mark.parametrize(
    "failure",
    [refused, lambda: reply(500), lambda: reply(502), lambda: reply(503)],
    ids=["connection", "500", "502", "503"],
)
def test_the_wait_rides_out_failures_with_a_growing_backoff(failure):
    flow = wait_for(max_retries=0)
    start(flow)
    for attempt in [1, 2, 3, 4, 5, 6, 6, 6]:
        assert resume(flow, failure()) == Sleep(backoff(attempt))
        assert resume(flow, None) == asks("30s", read=45)


def test_an_answer_resets_the_backoff():
    clock = Clock()
    flow = wait_for(clock=clock)
    start(flow)
    assert resume(flow, refused()) == Sleep(backoff(1))
    resume(flow, None)
    assert resume(flow, refused()) == Sleep(backoff(2))
    resume(flow, None)
    clock.now += 30
    assert resume(flow, reply(200, token("WAITING"))) == asks("30s", read=45)
    assert resume(flow, refused()) == Sleep(backoff(1))


def test_the_wait_is_sent_again_as_a_rate_limit_says_then_waits_as_told():
    flow = wait_for(max_retries=1)
    start(flow)
    limited = reply(429, **{"Retry-After": "2"})
    assert resume(flow, limited) == Sleep(2.0)  # the call's own retry
    assert resume(flow, None) == asks("30s", read=45)
    assert resume(flow, limited) == Sleep(2.0)  # past the retries: the wait rides it out
    assert resume(flow, None) == asks("30s", read=45)
    body = token("COMPLETED", output=json.dumps(True))
    assert resume(flow, reply(200, body)).value.output is True


def test_a_pause_is_cut_short_by_the_deadline_which_then_ends_the_wait():
    clock = Clock()
    flow = wait_for(5, clock=clock)
    start(flow)
    clock.now += 4
    assert resume(flow, refused()) == Sleep(1.0)
    clock.now += 1
    with pytest.raises(WaitDeadlineExceeded):
        resume(flow, None)


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (404, NotFoundError)])
def test_an_answer_that_will_not_change_ends_the_wait(status, error):
    flow = wait_for()
    start(flow)
    with pytest.raises(error):
        resume(flow, reply(status, {"error": "no"}))


# The async client's driver: a transport error is thrown into the flow, pauses are slept.


def test_the_async_client_retries_a_refused_connection_then_raises():
    async def scenario():
        async with AsyncWaitpoint(f"http://127.0.0.1:{free_port()}", "wp_x", max_retries=1) as sdk:
            await sdk.retrieve_token("waitpoint_1")

    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool, pytest.raises(ConnectionFailed, match="^GET "):
        pool.submit(asyncio.run, scenario()).result()
