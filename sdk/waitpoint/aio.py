"""The asyncio client: ``AsyncWaitpoint(base_url, api_key)``, and ``aio.wait``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import timedelta
from typing import Any, TypeVar

import httpx

from . import _common as c
from . import _flow
from .models import CompleteResult, CreatedToken, Token, WaitResult

T = TypeVar("T")


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

    async def _run(self, flow: _flow.Flow[T]) -> T:
        """Drive a policy from ``_flow``: send what it asks for, sleep as long as it says."""
        with closing(flow):
            outcome: _flow.Outcome = None
            while True:
                step = _flow.resume(flow, outcome)
                if isinstance(step, _flow.Done):
                    return step.value
                if isinstance(step, _flow.Sleep):
                    await asyncio.sleep(step.seconds)
                    outcome = None
                    continue
                try:
                    outcome = await self._http.request(step.method, step.path, **step.options)
                except httpx.TransportError as exc:
                    outcome = exc

    async def _send(self, method: str, path: str, *, retry: bool, **kwargs) -> dict:
        flow = _flow.request(
            method, path, retry=retry, max_retries=self.settings.max_retries, **kwargs
        )
        return await self._run(flow)

    async def create_token(self, **fields: Any) -> CreatedToken:
        """Create a token; fields as in ``Waitpoint.create_token``."""
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

    async def cancel_token(self, token: c.TokenRef, reason: str | None = None) -> CompleteResult:
        """Withdraw a waiting token; as ``Waitpoint.cancel_token``."""
        body = await self._send(
            "POST",
            f"{c.TOKENS}/{c.token_id(token)}/cancel",
            json={} if reason is None else {"reason": reason},
            retry=False,
        )
        return CompleteResult(body["success"], body.get("applied", True), body.get("status"))

    async def list_tokens(
        self, *, limit: int | None = None, **filters: Any
    ) -> AsyncIterator[Token]:
        """As ``Waitpoint.list_tokens``; ``limit`` is page_size (tokens a page)."""
        params = (
            c.list_params(**filters) if limit is None else c.list_params(**filters, page_size=limit)
        )
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
        """Wait until the token is completed or times out; ``deadline`` as in
        ``Waitpoint.for_token``."""
        return await self._run(_flow.for_token(token, self.settings, deadline=deadline))


class _AsyncWait:
    """``await aio.wait.for_token(...)``: each call uses a short-lived client from
    ``configure()`` / the environment, so it works in any event loop."""

    def __getattr__(self, name: str):
        if name not in (
            "create_token",
            "retrieve_token",
            "complete_token",
            "cancel_token",
            "for_token",
        ):
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
