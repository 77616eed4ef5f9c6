"""Tokens as wire JSON: optional fields are omitted, never null."""

from __future__ import annotations

import json
from datetime import datetime

from flask import current_app, request

from .. import lifecycle
from ..credentials import callback_signature
from ..models import COMPLETED, TIMED_OUT, Token
from ..timeutil import isoformat


def public_base_url() -> str:
    return current_app.config["WAITPOINT_PUBLIC_URL"] or request.host_url.rstrip("/")


def callback_url(public_id: str) -> str:
    signature = callback_signature(current_app.config["SECRET_KEY"], public_id)
    return f"{public_base_url()}/api/v1/waitpoints/tokens/{public_id}/callback/{signature}"


def token_json(token: Token, now: datetime, *, with_output: bool = False) -> dict:
    public_id = lifecycle.public_id_of(token)
    status = lifecycle.effective_status(token, now)
    item: dict = {"id": public_id, "url": callback_url(public_id), "status": status}
    if token.idempotency_key is not None:
        item["idempotencyKey"] = token.idempotency_key
    if token.idempotency_key_expires_at is not None:
        item["idempotencyKeyExpiresAt"] = isoformat(token.idempotency_key_expires_at)
    if token.timeout_at is not None:
        item["timeoutAt"] = isoformat(token.timeout_at)
    if status == COMPLETED:
        item["completedAt"] = isoformat(token.finished_at)
    elif status == TIMED_OUT:
        item["completedAt"] = isoformat(token.timeout_at)
    item["tags"] = json.loads(token.tags_json)
    item["createdAt"] = isoformat(token.created_at)
    if with_output:
        if status == TIMED_OUT:
            item.update(
                output=lifecycle.timeout_output(token),
                outputType="application/json",
                outputIsError=True,
            )
        elif status == COMPLETED and token.output is not None:
            item.update(output=token.output, outputType="application/json", outputIsError=False)
    return item
