"""The synchronous client: ``Waitpoint(base_url, api_key)``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx

from . import _common as c
from .errors import ConnectionFailed, RateLimited, ServerError, WaitDeadlineExceeded
from .models import CompleteResult, CreatedToken, Token, WaitResult

# A wait that comes back this much sooner than asked while still WAITING means the
# server was at capacity: pause before asking again instead of spinning.
_EARLY = 0.5


class Waitpoint:
    """A client for one server and API key. Thread-safe; reuse it (it pools connections)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **options: Any):
        self.settings = c.settings(base_url, api_key, **options)
        self._http = httpx.Client(
            base_url=self.settings.base_url,
            headers=c.headers(self.settings),
            timeout=self.settings.timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Waitpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, method: str, path: str, *, retry: bool, **kwargs) -> dict:
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            response = None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                # Only a call that may be repeated is sent again: the first may have landed.
                if last or not retry:
                    raise ConnectionFailed(f"{method} {path}: {exc}") from exc
            else:
                if last or not c.retryable(response, idempotent=retry):
                    return c.check(response)
            time.sleep(c.pause(response, attempt))
        raise ServerError(0, "unreachable")  # pragma: no cover  (the loop always returns)

    def create_token(self, **fields: Any) -> CreatedToken:
        """Create a token. Fields: timeout, tags, idempotency_key, idempotency_key_ttl,
        title, description, details. Retried only when it has an idempotency key."""
        body = c.create_body(**fields)
        retry = "idempotencyKey" in body
        return CreatedToken.from_json(self._send("POST", c.TOKENS, json=body, retry=retry))

    def retrieve_token(self, token: c.TokenRef) -> Token:
        return Token.from_json(self._send("GET", f"{c.TOKENS}/{c.token_id(token)}", retry=True))

    def complete_token(self, token: c.TokenRef, data: Any = c.NO_DATA) -> CompleteResult:
        """Complete with ``data`` as output. Not retried: a completion is not repeated blindly."""
        body = self._send(
            "POST",
            f"{c.TOKENS}/{c.token_id(token)}/complete",
            json=c.complete_body(data),
            retry=False,
        )
        return CompleteResult(body["success"], body.get("applied", True), body.get("status"))

    def list_tokens(self, **filters: Any) -> Iterator[Token]:
        """Every matching token, newest first, fetching pages as the loop goes.
        Filters: status, tags, idempotency_key, period, from_, to, page_size."""
        params = c.list_params(**filters)
        while True:
            page = self._send("GET", c.TOKENS, params=params, retry=True)
            for item in page["data"]:
                yield Token.from_json(item)
            cursor = page["pagination"].get("next")
            if not cursor:
                return
            params = {**params, "page[after]": cursor}

    def for_token(
        self, token: c.TokenRef, *, deadline: float | timedelta | None = None
    ) -> WaitResult:
        """Block until the token is completed or times out.

        ``deadline`` (seconds or timedelta) bounds the wait on this side; when it
        runs out first, ``WaitDeadlineExceeded`` is raised and the token is untouched.
        """
        path = f"{c.TOKENS}/{c.token_id(token)}/wait"
        limit = deadline.total_seconds() if isinstance(deadline, timedelta) else deadline
        ends = None if limit is None else time.monotonic() + limit
        failures = 0
        while True:
            now = time.monotonic()
            if ends is not None and now >= ends:
                raise WaitDeadlineExceeded(f"{c.token_id(token)} still waiting after {limit}s")
            window = c.wait_window(self.settings, ends, now)
            try:
                body = self._send(
                    "GET",
                    path,
                    params={"timeout": c.duration(window)},
                    retry=False,
                    timeout=httpx.Timeout(self.settings.timeout, read=window + 15),
                )
            except (ConnectionFailed, ServerError, RateLimited) as exc:
                # A restart, a proxy hiccup or a rate limit must not end a long wait: back
                # off (as told, if told) and ask again for as long as the deadline allows.
                failures += 1
                pause = getattr(exc, "retry_after", None) or c.backoff(min(failures, 6))
                if ends is not None:
                    pause = min(pause, max(0.0, ends - time.monotonic()))
                time.sleep(pause)
                continue
            failures = 0
            result = Token.from_json(body)
            if result.status != "WAITING":
                return c.wait_result(result)
            if time.monotonic() - now < window - _EARLY:
                time.sleep(_EARLY)  # the server was at capacity: do not spin
