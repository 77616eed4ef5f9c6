"""Waitpoint: human-in-the-loop approval tokens, from Python.

    from waitpoint import configure, wait
    configure(base_url="http://127.0.0.1:5000", api_key="wp_...")
    token = wait.create_token(timeout="24h", title="Refund €240?")
    result = wait.for_token(token)          # blocks until decided or timed out

``Waitpoint`` is the explicit client; ``AsyncWaitpoint`` (and ``waitpoint.aio.wait``)
its asyncio twin. ``waitpoint.webhooks.verify`` checks a webhook delivery's signature.
``@require_approval(...)`` runs a function only once a person has approved the call.
"""

from __future__ import annotations

import threading
from typing import Any

from . import webhooks
from .aio import AsyncWaitpoint
from .client import Waitpoint
from .errors import (
    APIError,
    ApprovalError,
    ApprovalRejected,
    ApprovalTimedOut,
    ApprovalWithdrawn,
    AuthenticationError,
    ConnectionFailed,
    NotFoundError,
    RateLimited,
    ServerError,
    ValidationError,
    WaitDeadlineExceeded,
    WaitpointError,
    WaitpointTimeoutError,
    WebhookVerificationError,
)
from .guard import require_approval
from .models import (
    Approval,
    Approver,
    ApproverState,
    CompleteResult,
    CreatedToken,
    Decision,
    Token,
    WaitResult,
)

__all__ = [
    "APIError",
    "Approval",
    "ApprovalError",
    "ApprovalRejected",
    "ApprovalTimedOut",
    "ApprovalWithdrawn",
    "Approver",
    "ApproverState",
    "AsyncWaitpoint",
    "AuthenticationError",
    "CompleteResult",
    "ConnectionFailed",
    "CreatedToken",
    "Decision",
    "NotFoundError",
    "RateLimited",
    "ServerError",
    "Token",
    "ValidationError",
    "WaitDeadlineExceeded",
    "WaitResult",
    "Waitpoint",
    "WaitpointError",
    "WaitpointTimeoutError",
    "WebhookVerificationError",
    "configure",
    "require_approval",
    "wait",
    "webhooks",
]

_options: dict[str, Any] = {}
_client: Waitpoint | None = None
_lock = threading.Lock()


def configure(base_url: str | None = None, api_key: str | None = None, **options: Any) -> None:
    """Set the server and key that ``wait`` uses (default: WAITPOINT_URL, WAITPOINT_API_KEY)."""
    global _client
    with _lock:
        _options.clear()
        _options.update(base_url=base_url, api_key=api_key, **options)
        if _client is not None:
            _client.close()
        _client = None


def _default_options() -> dict[str, Any]:
    return dict(_options)


def _default_client() -> Waitpoint:
    global _client
    with _lock:
        if _client is None:
            _client = Waitpoint(**_options)
        return _client


class _Wait:
    """``wait.create_token``, ``for_token``, ``complete_token``, ``retrieve_token``,
    ``list_tokens``: the methods of ``Waitpoint`` on the configured default client."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_default_client(), name)


wait = _Wait()
