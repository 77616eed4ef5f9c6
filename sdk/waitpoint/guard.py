"""``@require_approval``: a function that runs only once a person has approved the call.

    from waitpoint import require_approval

    @require_approval(title=lambda customer, amount: f"Refund €{amount} to #{customer}?")
    def refund(customer: int, amount: float) -> None: ...

Each call creates a token, hands its URL to ``notify`` (by default, logs it), waits for
the decision (long poll) and runs the function if it was approved. Otherwise the function
does not run and an ``ApprovalError`` says why: ``ApprovalRejected``, ``ApprovalTimedOut``
or ``ApprovalWithdrawn``. ``def`` and ``async def`` functions alike.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from . import _common as c
from .aio import AsyncWaitpoint
from .client import Waitpoint
from .errors import ApprovalError, ApprovalRejected, ApprovalTimedOut, ApprovalWithdrawn
from .models import Decision, Token, WaitResult

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("waitpoint.guard")

CANCELLED = "WAITPOINT_CANCELLED"  # the output code of a withdrawn token


def require_approval(
    *,
    title: str | Callable[..., str] | None = None,
    description: str | Callable[..., str] | None = None,
    details: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None = None,
    tags: str | Iterable[str] | Callable[..., str | Iterable[str]] | None = None,
    timeout: str | datetime | timedelta | None = None,
    approvers: Iterable[c.ApproverRef] | None = None,
    required_approvals: int | None = None,
    form: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None = None,
    approve_label: str | None = None,
    reject_label: str | None = None,
    idempotency_key: Callable[..., str] | None = None,
    idempotency_key_ttl: str | timedelta | None = None,
    notify: Callable[[str], Any] | None = None,
    client: Waitpoint | AsyncWaitpoint | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Ask a person before each call of the decorated function.

    ``title`` (default: from the function's name, "Refund customer?"), ``description``,
    ``details``, ``tags`` and ``form`` are values, or callables given the call's arguments
    that return them (a form whose defaults are this call's values, for instance). The
    other fields are ``create_token``'s; without a ``timeout`` the token waits until
    someone decides. ``idempotency_key``, a callable given the call's arguments, makes a
    retried call wait on the same token (once approved, a retry runs again: make the
    action itself safe to repeat too).

    ``notify(url)`` is told the approval page (for a coroutine function it may be a
    coroutine function too), again when a retry reuses the token; without it the URL is
    logged. ``client`` is a ``Waitpoint``
    for a ``def`` function, an ``AsyncWaitpoint`` for an ``async def`` one; without it,
    the default client (``configure()``, else WAITPOINT_URL and WAITPOINT_API_KEY).

    Approved, the function runs, and if it takes a keyword argument ``approval`` that is
    the ``Decision`` (``approval.response``: the form's answers; ``comment``, ``approver``).
    """
    if idempotency_key is not None and not callable(idempotency_key):
        raise TypeError("idempotency_key must be a callable of the call's arguments")
    per_call = {
        "title": title,
        "description": description,
        "details": details,
        "tags": tags,
        "form": form,
        "idempotency_key": idempotency_key,
    }
    fixed = {
        "timeout": timeout,
        "approvers": approvers,
        "required_approvals": required_approvals,
        "approve_label": approve_label,
        "reject_label": reject_label,
        "idempotency_key_ttl": idempotency_key_ttl,
    }

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        guard = _Guard(fn, per_call, fixed, notify)
        if inspect.iscoroutinefunction(fn):
            if isinstance(client, Waitpoint):
                raise TypeError(f"{fn.__qualname__} is async: give it an AsyncWaitpoint")
            return _async_guarded(fn, guard, client)  # type: ignore[return-value]
        if isinstance(client, AsyncWaitpoint):
            raise TypeError(f"{fn.__qualname__} is not async: give it a Waitpoint")
        if inspect.iscoroutinefunction(notify):
            raise TypeError(f"{fn.__qualname__} is not async: notify cannot be a coroutine")
        return _guarded(fn, guard, client)

    return decorate


def _guarded(fn: Callable[P, R], guard: _Guard, client: Waitpoint | None) -> Callable[P, R]:
    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        if client is None:
            from . import _default_client

            wp = _default_client()
        else:
            wp = client
        token = wp.create_token(**guard.fields(args, kwargs))
        guard.tell(token.url)
        decision = guard.decide(wp.for_token(token))
        return fn(*args, **guard.with_approval(kwargs, decision))

    return guarded


def _async_guarded(fn, guard: _Guard, client: AsyncWaitpoint | None):
    @functools.wraps(fn)
    async def guarded(*args, **kwargs):
        async with _async_client(client) as wp:
            token = await wp.create_token(**guard.fields(args, kwargs))
            told = guard.tell(token.url)
            if inspect.isawaitable(told):
                await told
            decision = guard.decide(await wp.for_token(token))
        return await fn(*args, **guard.with_approval(kwargs, decision))

    return guarded


def _async_client(client: AsyncWaitpoint | None):
    """The given client (left open), or a short-lived default one: like ``aio.wait``,
    so that the function may be called from any event loop."""
    if client is not None:
        return contextlib.nullcontext(client)
    from . import _default_options

    return AsyncWaitpoint(**_default_options())


class _Guard:
    """What the sync and async wrappers share: the token's fields for a call, the
    notification, the decision read from the wait's result."""

    def __init__(self, fn: Callable, per_call: dict, fixed: dict, notify: Callable | None):
        self.name = fn.__qualname__
        words = fn.__name__.replace("_", " ").strip()  # refund_customer: "Refund customer?"
        self.default_title = words[:1].upper() + words[1:] + "?"
        self.per_call = per_call
        self.fixed = {name: value for name, value in fixed.items() if value is not None}
        self.notify = notify
        self.signature = inspect.signature(fn)
        approval = self.signature.parameters.get("approval")
        self.takes_approval = approval is not None and approval.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        )

    def fields(self, args: tuple, kwargs: dict) -> dict:
        """The token's fields for this call. A call the function could not take fails here,
        with the function's own TypeError: before anyone is asked, not once they approved."""
        if not self.takes_approval:
            self.signature.bind(*args, **kwargs)
        elif "approval" in kwargs:
            raise TypeError(f"{self.name}: approval is given by require_approval, not the caller")
        else:
            self.signature.bind(*args, **kwargs, approval=None)
        fields = dict(self.fixed)
        for name, value in self.per_call.items():
            value = value(*args, **kwargs) if callable(value) else value
            if value is not None:
                fields[name] = value
        fields.setdefault("title", self.default_title)
        return fields

    def tell(self, url: str) -> Any:
        if self.notify is not None:
            return self.notify(url)
        # A warning, so that it shows without any logging set up: a call that waits for
        # someone who was never told would wait until its timeout.
        log.warning("%s waits for approval: %s", self.name, url)
        return None

    def with_approval(self, kwargs: dict, decision: Decision) -> dict:
        return {**kwargs, "approval": decision} if self.takes_approval else kwargs

    def decide(self, result: WaitResult) -> Decision:
        """The approval, or the ``ApprovalError`` that says why there is none."""
        token = result.token
        if result.timed_out:
            raise ApprovalTimedOut(f"{self.name}: nobody decided by {token.timeout_at}", token)
        withdrawn = _withdrawn(token)
        if withdrawn is not None:
            raise ApprovalWithdrawn(f"{self.name}: {withdrawn}", token, withdrawn)
        output = token.output if isinstance(token.output, dict) else {}
        approved = output.get("approved")
        if approved is True:
            return token.decision or _decision_from(token, output)
        if approved is False:
            approver = output.get("approver") or token.rejected_by
            comment = output.get("comment") or ""
            said = f": {comment}" if comment else ""
            message = f"{self.name}: rejected by {approver or 'the approver'}{said}"
            raise ApprovalRejected(message, token, approver, comment)
        # Completed through the API with something other than a decision: not an approval.
        raise ApprovalError(f"{self.name}: completed without a decision", token)


def _withdrawn(token: Token) -> str | None:
    """The message of a withdrawn token (COMPLETED with the error output
    ``{"code": "WAITPOINT_CANCELLED", "message"}``), None for any other."""
    raw = token.raw
    if token.status != "COMPLETED" or not raw.get("outputIsError") or "output" not in raw:
        return None
    output = json.loads(raw["output"])
    if not isinstance(output, dict) or output.get("code") != CANCELLED:
        return None
    return output.get("message") or "The request was withdrawn"


def _decision_from(token: Token, output: dict) -> Decision:
    """An approval through the API (``complete_token(t, {"approved": True, ...})``) has no
    decision of its own: read one from the output."""
    approver, response = output.get("approver"), output.get("response")
    return Decision(
        approved=True,
        comment=str(output.get("comment") or ""),
        decided_at=token.completed_at or token.created_at,
        source="api",
        approver=approver if isinstance(approver, str) else None,
        response=response if isinstance(response, dict) else None,
    )
