"""The asyncio client: ``AsyncWaitpoint(base_url, api_key)``, and ``aio.wait``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx

from . import _common as c
from .errors import ConnectionFailed, RateLimited, ServerError, WaitDeadlineExceeded
from .models import CompleteResult, CreatedToken, Token, WaitResult

_EARLY = 0.5


class AsyncWaitpoint:
    """The asyncio twin of ``Waitpoint``; use it inside one event loop."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **options: Any):
        self.settings = c.settings(base_url, api_key, **options)
        self._http = httpx.AsyncClient(
            base_url=self.settings.base_url,
            headers=c.headers(self.settings),
            timeout=self.settings.timeout,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncWaitpoint:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _send(self, method: str, path: str, *, retry: bool, **kwargs) -> dict:
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            response = None
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                # Only a call that may be repeated is sent again: the first may have landed.
                if last or not retry:
                    raise ConnectionFailed(f"{method} {path}: {exc}") from exc
            else:
                if last or not c.retryable(response, idempotent=retry):
                    return c.check(response)
            await asyncio.sleep(c.pause(response, attempt))
        raise ServerError(0, "unreachable")  # pragma: no cover

    async def create_token(self, **fields: Any) -> CreatedToken:
        body = c.create_body(**fields)
        retry = "idempotencyKey" in body
        return CreatedToken.from_json(await self._send("POST", c.TOKENS, json=body, retry=retry))

    async def retrieve_token(self, token: c.TokenRef) -> Token:
        path = f"{c.TOKENS}/{c.token_id(token)}"
        return Token.from_json(await self._send("GET", path, retry=True))

    async def complete_token(self, token: c.TokenRef, data: Any = c.NO_DATA) -> CompleteResult:
        body = await self._send(
            "POST",
            f"{c.TOKENS}/{c.token_id(token)}/complete",
            json=c.complete_body(data),
            retry=False,
        )
        return CompleteResult(body["success"], body.get("applied", True), body.get("status"))

    async def list_tokens(self, **filters: Any) -> AsyncIterator[Token]:
        params = c.list_params(**filters)
        while True:
            page = await self._send("GET", c.TOKENS, params=params, retry=True)
            for item in page["data"]:
                yield Token.from_json(item)
            cursor = page["pagination"].get("next")
            if not cursor:
                return
            params = {**params, "page[after]": cursor}

    async def for_token(
        self, token: c.TokenRef, *, deadline: float | timedelta | None = None
    ) -> WaitResult:
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
                body = await self._send(
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
                await asyncio.sleep(pause)
                continue
            failures = 0
            result = Token.from_json(body)
            if result.status != "WAITING":
                return c.wait_result(result)
            if time.monotonic() - now < window - _EARLY:
                await asyncio.sleep(_EARLY)  # the server was at capacity: do not spin


class _AsyncWait:
    """``await aio.wait.for_token(...)``: each call uses a short-lived client from
    ``configure()`` / the environment, so it works in any event loop."""

    def __getattr__(self, name: str):
        if name not in ("create_token", "retrieve_token", "complete_token", "for_token"):
            raise AttributeError(name)

        async def call(*args, **kwargs):
            from . import _default_options

            async with AsyncWaitpoint(**_default_options()) as client:
                return await getattr(client, name)(*args, **kwargs)

        return call

    async def list_tokens(self, **filters: Any) -> AsyncIterator[Token]:
        from . import _default_options

        async with AsyncWaitpoint(**_default_options()) as client:
            async for token in client.list_tokens(**filters):
                yield token


wait = _AsyncWait()
