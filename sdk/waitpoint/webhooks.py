"""Verify a webhook delivery from Waitpoint (Standard Webhooks signatures).

    from waitpoint import webhooks
    event = webhooks.verify(request.get_data(), request.headers, secret)  # "whsec_..."
    if event.type == "waitpoint.completed":
        print(event.data["id"], event.data["output"])

``verify`` checks the ``webhook-signature`` (HMAC-SHA256 of id, timestamp and the raw
body) in constant time, and refuses a ``webhook-timestamp`` more than five minutes away
from now (a replayed delivery). Pass the body exactly as received: bytes, not re-encoded
JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import standardwebhooks

from .errors import WebhookVerificationError

__all__ = ["WebhookEvent", "WebhookVerificationError", "sign", "verify"]


@dataclass(frozen=True)
class WebhookEvent:
    """A verified event. ``id`` is the ``webhook-id``, the same on every retry and
    redelivery of this event to this endpoint: use it to ignore duplicates."""

    id: str
    type: str  # waitpoint.created | waitpoint.completed | waitpoint.timed_out
    timestamp: datetime  # when the event happened
    data: dict[str, Any]  # the token as the retrieve endpoint showed it then


def verify(body: bytes | str, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """The event of a delivery whose signature is right and recent; else raises
    ``WebhookVerificationError`` (a ``WaitpointError``) saying why."""
    try:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        text = body.decode() if isinstance(body, bytes) else body
        payload = standardwebhooks.Webhook(secret).verify(text, lower)
    except standardwebhooks.WebhookVerificationError as exc:
        raise WebhookVerificationError(str(exc)) from None
    except Exception as exc:  # a malformed secret, header or body: never verified
        raise WebhookVerificationError(f"not a valid delivery: {type(exc).__name__}") from None
    try:
        return WebhookEvent(
            id=lower["webhook-id"],
            type=payload["type"],
            timestamp=datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")),
            data=payload["data"],
        )
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise WebhookVerificationError(f"signed, but not a Waitpoint event: {exc!r}") from None


def sign(body: bytes | str, secret: str, msg_id: str, timestamp: datetime) -> dict[str, str]:
    """The headers Waitpoint would send with ``body`` (``timestamp`` timezone-aware): for
    testing a receiver."""
    text = body.decode() if isinstance(body, bytes) else body
    signature = standardwebhooks.Webhook(secret).sign(msg_id, timestamp, text)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
