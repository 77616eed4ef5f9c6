"""Tokens as wire JSON (the retrieve object): optional fields are omitted, never null.

The API answers with it, and webhook events carry it as their ``data``.
"""

from __future__ import annotations

import json
from datetime import datetime

from ..models import COMPLETED, TIMED_OUT
from . import approvers, lifecycle
from .capability import callback_url
from .stored import StoredToken
from .timeutil import isoformat


def token_json(
    token: StoredToken, now: datetime, *, with_output: bool = False, base_url: str | None = None
) -> dict:
    """``token`` as stored: settle overdue tokens first (``lifecycle.settle_overdue``).

    ``base_url``: the service's public URL, when serializing many tokens in one go.
    """
    status = token.status
    item: dict = {"id": token.id, "url": callback_url(token.id, base_url), "status": status}
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
    item["tags"] = token.tags
    item["createdAt"] = isoformat(token.created_at)
    if with_output:
        if status == TIMED_OUT:
            item.update(
                output=lifecycle.timeout_output(token),
                outputType="application/json",
                outputIsError=True,
            )
        elif status == COMPLETED and token.output is not None:
            item.update(
                output=token.output,
                outputType="application/json",
                outputIsError=token.cancelled,  # withdrawn: an error, not a decision
            )
        _add_request_fields(item, token)
    return item


def _add_request_fields(item: dict, token: StoredToken) -> None:
    if token.title is not None:
        item["title"] = token.title
    if token.description is not None:
        item["description"] = token.description
    if token.details_json is not None:
        item["details"] = token.details
    if token.requested_by is not None:
        item["requestedBy"] = token.requested_by
    if token.required_approvals is not None:
        item["requiredApprovals"] = token.required_approvals
        item["approvers"] = [a.wire_json() for a in approvers.of_token(token.pk)]
    if token.form_json is not None:
        item["form"] = json.loads(token.form_json)
    if token.approve_label is not None:
        item["approveLabel"] = token.approve_label
    if token.reject_label is not None:
        item["rejectLabel"] = token.reject_label
    if token.timeout_output is not None:
        item["timeoutOutput"] = token.timeout_output
    completion = token.completion
    if completion is not None and completion.approved is not None:
        decision = {
            "approved": completion.approved,
            "approver": completion.actor,
            "comment": completion.comment or "",
            "decidedAt": isoformat(completion.at),
            "source": completion.source,
            "response": _response_of(token) if completion.approved else None,
            "ip": completion.ip,
            "userAgent": completion.user_agent,
        }
        item["decision"] = {k: v for k, v in decision.items() if v is not None}


def _response_of(token: StoredToken) -> dict | None:
    """The response form's answers of an approval, from its output."""
    if token.form_json is None or token.output is None:
        return None
    output = json.loads(token.output)
    return output.get("response") if isinstance(output, dict) else None
