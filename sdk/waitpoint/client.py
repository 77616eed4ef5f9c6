"""The synchronous client: ``Waitpoint(base_url, api_key)``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from typing import Any, TypeVar

import httpx

from . import _common as c
from . import _flow
from .models import CompleteResult, CreatedToken, Token, WaitResult

T = TypeVar("T")


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

    def _run(self, flow: _flow.Flow[T]) -> T:
        """Drive a policy from ``_flow``: send what it asks for, sleep as long as it says."""
        with closing(flow):
            outcome: _flow.Outcome = None
            while True:
                step = _flow.resume(flow, outcome)
                if isinstance(step, _flow.Done):
                    return step.value
                if isinstance(step, _flow.Sleep):
                    time.sleep(step.seconds)
                    outcome = None
                    continue
                try:
                    outcome = self._http.request(step.method, step.path, **step.options)
                except httpx.TransportError as exc:
                    outcome = exc

    def _send(self, method: str, path: str, *, retry: bool, **kwargs) -> dict:
        flow = _flow.request(
            method, path, retry=retry, max_retries=self.settings.max_retries, **kwargs
        )
        return self._run(flow)

    def create_token(self, **fields: Any) -> CreatedToken:
        """Create a token. Fields: timeout, tags, idempotency_key, idempotency_key_ttl,
        title, description, details; and named approvers (Waitpoint extensions): approvers
        (``Approver``, ``{"email", "name"}`` or an email each), required_approvals,
        requested_by, reminders (durations); and a response form (Waitpoint extensions):
        form (the restricted JSON Schema the approver fills in before approving),
        approve_label, reject_label (the buttons), timeout_output (any JSON, None
        included: the output if the token times out). Retried only when it has an
        idempotency key."""
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

    def cancel_token(self, token: c.TokenRef, reason: str | None = None) -> CompleteResult:
        """Withdraw a waiting token (a Waitpoint extension): it becomes COMPLETED with an
        error output ``{"code": "WAITPOINT_CANCELLED", "message"}``; ``reason`` is shown on
        the approval page. ``applied`` is False if it had already ended. Not retried."""
        body = self._send(
            "POST",
            f"{c.TOKENS}/{c.token_id(token)}/cancel",
            json={} if reason is None else {"reason": reason},
            retry=False,
        )
        return CompleteResult(body["success"], body.get("applied", True), body.get("status"))

    def list_tokens(self, *, limit: int | None = None, **filters: Any) -> Iterator[Token]:
        """Every matching token, newest first, fetching pages as the loop goes.
        Filters: status, tags, idempotency_key, period, from_, to, approver (an email:
        tokens on which that named approver has not voted yet), page_size. ``limit`` is
        the TypeScript SDK's name for page_size: tokens a page, not in all (to stop
        early, ``itertools.islice``)."""
        params = (
            c.list_params(**filters) if limit is None else c.list_params(**filters, page_size=limit)
        )
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
        A token that times out is returned not ``ok``, with ``timed_out`` and ``error``
        set, and its ``timeout_output`` (if it has one) as ``output``.
        """
        return self._run(_flow.for_token(token, self.settings, deadline=deadline))
