"""The wait policy, written once for both clients: when to send again, how long to pause.

Each policy is a generator, as httpx writes an auth flow. It yields what to do next, a
``Send`` (a request) or a ``Sleep`` (a pause), and is resumed with the outcome: the
``httpx.Response`` of a ``Send``, or its ``httpx.TransportError`` thrown in; ``None``
after a ``Sleep``. What it returns is the call's result. ``Waitpoint`` drives it with
``httpx.Client`` and ``time.sleep``, ``AsyncWaitpoint`` with ``httpx.AsyncClient`` and
``asyncio.sleep``, and tests by hand: the generators never sleep, and read the clock and
the backoff jitter through the ``clock`` and ``backoff`` they are given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

import httpx

from . import _common as c
from .errors import ConnectionFailed, RateLimited, ServerError, WaitDeadlineExceeded
from .models import Token, WaitResult

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Send this request (``options`` as ``httpx.Client.request`` takes them)."""

    method: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Done(Generic[T]):
    """The flow has finished; ``value`` is what it returned."""

    value: T


Flow = Generator[Send | Sleep, httpx.Response | None, T]
Outcome = httpx.Response | httpx.TransportError | None


def resume(flow: Flow[T], outcome: Outcome) -> Send | Sleep | Done[T]:
    """Hand ``flow`` the outcome of its last step (an error is thrown in) and take its
    next step, or ``Done``. Whatever the flow raises is raised here."""
    try:
        if isinstance(outcome, httpx.TransportError):
            return flow.throw(outcome)
        return flow.send(outcome)
    except StopIteration as finished:
        return Done(finished.value)


def request(
    method: str,
    path: str,
    *,
    retry: bool,
    max_retries: int,
    backoff: Callable[[int], float] = c.backoff,
    **options: Any,
) -> Flow[dict]:
    """One call: the JSON body of its 2xx response, or the matching exception.

    Connection errors and 5xx are retried when ``retry`` says the call may be repeated;
    429 and 503 (nothing was done) for every call, after the server's ``Retry-After``.
    """
    attempts = max_retries + 1
    for attempt in range(attempts):
        last = attempt == attempts - 1
        response = None
        try:
            response = yield Send(method, path, options)
        except httpx.TransportError as exc:
            # Only a call that may be repeated is sent again: the first may have landed.
            if last or not retry:
                raise ConnectionFailed(f"{method} {path}: {exc}") from exc
        else:
            if last or not c.retryable(response, idempotent=retry):
                return c.check(response)
        yield Sleep(c.pause(response, attempt, backoff))
    raise ServerError(0, "unreachable")  # pragma: no cover  (the loop always returns)


# A wait that comes back this much sooner than asked while still WAITING means the
# server was at capacity: pause before asking again instead of spinning.
EARLY = 0.5


def for_token(
    token: c.TokenRef,
    settings: c.Settings,
    *,
    deadline: float | timedelta | None = None,
    clock: Callable[[], float] = time.monotonic,
    backoff: Callable[[int], float] = c.backoff,
) -> Flow[WaitResult]:
    """Long-poll until the token leaves WAITING; ``WaitDeadlineExceeded`` once
    ``deadline`` (seconds or timedelta, on ``clock``) has run out first."""
    path = f"{c.TOKENS}/{c.token_id(token)}/wait"
    limit = deadline.total_seconds() if isinstance(deadline, timedelta) else deadline
    ends = None if limit is None else clock() + limit
    failures = 0
    while True:
        now = clock()
        if ends is not None and now >= ends:
            raise WaitDeadlineExceeded(f"{c.token_id(token)} still waiting after {limit}s")
        window = c.wait_window(settings, ends, now)
        try:
            body = yield from request(
                "GET",
                path,
                retry=False,
                max_retries=settings.max_retries,
                backoff=backoff,
                params={"timeout": c.duration(window)},
                timeout=httpx.Timeout(settings.timeout, read=window + 15),
            )
        except (ConnectionFailed, ServerError, RateLimited) as exc:
            # A restart, a proxy hiccup or a rate limit must not end a long wait: back
            # off (as told, if told) and ask again for as long as the deadline allows.
            failures += 1
            pause = getattr(exc, "retry_after", None) or backoff(min(failures, 6))
            if ends is not None:
                pause = min(pause, max(0.0, ends - clock()))
            yield Sleep(pause)
            continue
        failures = 0
        result = Token.from_json(body)
        if result.status != "WAITING":
            return c.wait_result(result)
        if clock() - now < window - EARLY:
            yield Sleep(EARLY)  # the server was at capacity: do not spin
