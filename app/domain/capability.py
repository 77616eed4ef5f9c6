"""Callback URLs and personal links: capability URLs whose signature is the only
permission needed.

- ``{PUBLIC_URL}/api/v1/waitpoints/tokens/{id}/callback/{hash}``: ``hash`` is an
  HMAC-SHA256 of the token id under a key derived from ``SECRET_KEY``;
- ``{PUBLIC_URL}/approvers/{id}/{n}/{hash}``: the personal link of the token's n-th
  named approver, signed under another derived key.
"""

from __future__ import annotations

import logging

from flask import current_app, has_request_context, request

from .approvers import StoredApprover, of_token
from .credentials import (
    approver_signature,
    approver_signature_ok,
    callback_signature,
    callback_signature_ok,
)
from .stored import StoredToken, find_token

# Outside a request and without WAITPOINT_PUBLIC_URL (a webhook about a time-out the
# sweep stored, an email), URLs name the server as ``waitpoint serve`` bound it, or this
# default elsewhere: set WAITPOINT_PUBLIC_URL.
FALLBACK_BASE_URL = "http://localhost:5000"


def public_base_url() -> str:
    configured = current_app.config["WAITPOINT_PUBLIC_URL"]
    if configured:
        return configured
    if has_request_context():
        return request.host_url.rstrip("/")
    # ``waitpoint serve`` names itself as bound (WaitpointServer); else only a guess.
    return current_app.config.get("WAITPOINT_FALLBACK_URL") or FALLBACK_BASE_URL


_warned = False


def warn_without_public_url() -> None:
    """Mail and webhooks go out outside any request: without ``WAITPOINT_PUBLIC_URL`` their
    URLs are a guess. Says so in the log, once per process."""
    global _warned
    if not _warned and not current_app.config["WAITPOINT_PUBLIC_URL"]:
        _warned = True
        logging.getLogger(__name__).warning(
            "WAITPOINT_PUBLIC_URL is not set: the URLs in emails and webhook payloads name "
            "%s; set it to the address approvers and callers use",
            public_base_url(),
        )


def callback_path(public_id: str) -> str:
    signature = callback_signature(current_app.config["SECRET_KEY"], public_id)
    return f"/api/v1/waitpoints/tokens/{public_id}/callback/{signature}"


def callback_url(public_id: str, base_url: str | None = None) -> str:
    """The full callback URL; ``base_url`` saves the lookup when building many."""
    return (base_url or public_base_url()) + callback_path(public_id)


def signed(public_id: str, signature: str) -> bool:
    """Whether ``signature`` is the callback signature of ``public_id``."""
    return callback_signature_ok(current_app.config["SECRET_KEY"], public_id, signature)


def token_for(public_id: str, signature: str) -> StoredToken | None:
    """The token a callback URL names; None alike for a bad signature and an unknown id."""
    return find_token(public_id) if signed(public_id, signature) else None


def approver_path(public_id: str, position: int) -> str:
    signature = approver_signature(current_app.config["SECRET_KEY"], public_id, position)
    return f"/approvers/{public_id}/{position}/{signature}"


def approver_url(public_id: str, position: int) -> str:
    return public_base_url() + approver_path(public_id, position)


def approver_for(
    public_id: str, position: int, signature: str
) -> tuple[StoredToken, StoredApprover] | None:
    """The token and approver a personal link names; None alike for a bad signature, an
    unknown token and a position the token does not have."""
    secret = current_app.config["SECRET_KEY"]
    if not approver_signature_ok(secret, public_id, position, signature):
        return None
    token = find_token(public_id)
    if token is None:
        return None
    approver = next((a for a in of_token(token.pk) if a.position == position), None)
    return (token, approver) if approver is not None else None
