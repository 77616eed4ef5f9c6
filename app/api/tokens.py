"""Waitpoint token routes, as the API reference describes them (``docs/api.md``).

Views translate HTTP only: parse and validate, call one lifecycle or listing
function, serialize.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, g, jsonify, request

from ..domain import capability, lifecycle, response_form, stored, token_list, webhooks
from ..domain.stored import StoredToken
from ..domain.timeutil import parse_deadline, parse_duration, parse_instant, utcnow
from ..domain.wire import token_json
from ..infra import mailer
from ..infra.database import write_transaction
from ..infra.waiting import client_gone
from ..models import COMPLETED, WAITING
from ..web.security import completion_record
from . import bp
from .auth import require_api_key
from .bodies import parse_model, read_json_body, read_json_object
from .errors import ApiError
from .schemas import (
    CancelTokenRequest,
    CompleteTokenRequest,
    CreateTokenRequest,
    ListTokensQuery,
)

TOKENS = "/v1/waitpoints/tokens"


@bp.post(TOKENS)
@require_api_key
def create_token():
    body = parse_model(
        CreateTokenRequest, read_json_object(current_app.config["WAITPOINT_CREATE_MAX_BYTES"])
    )
    now = utcnow()
    new = _new_token(body, now)
    token, cached = lifecycle.create_token(g.project_id, new, now)
    answer = {"id": token.id, "url": capability.callback_url(token.id), "isCached": cached}
    if new.webhook_secret and not cached:
        answer["webhookSecret"] = new.webhook_secret  # shown once, to whoever created it
    return jsonify(answer)


def _new_token(body: CreateTokenRequest, now: datetime) -> lifecycle.NewToken:
    timeout_at = None
    if body.timeout is not None:
        try:
            timeout_at = parse_deadline(body.timeout, now)
        except ValueError as exc:
            raise ApiError(400, f"timeout: {exc}") from None
    webhook_url = None
    if body.webhookUrl is not None:
        try:
            webhook_url = webhooks.check_url(body.webhookUrl, "webhookUrl")
        except webhooks.WebhookError as exc:
            raise ApiError(400, str(exc)) from None
    form_json = None
    if body.form is not None:
        try:
            form_json = lifecycle.to_json_text(response_form.check_schema(body.form))
        except response_form.FormSchemaError as exc:
            raise ApiError(400, str(exc)) from None
    timeout_output = None
    if "timeoutOutput" in body.model_fields_set:
        timeout_output = lifecycle.to_json_text(body.timeoutOutput)
    return lifecycle.NewToken(
        **_approvers_of(body, now, timeout_at),
        form_json=form_json,
        approve_label=body.approveLabel,
        reject_label=body.rejectLabel,
        timeout_output=timeout_output,
        timeout_at=timeout_at,
        tags=body.tag_list(),
        idempotency_key=body.idempotencyKey,
        idempotency_ttl=parse_duration(body.idempotencyKeyTTL) if body.idempotencyKeyTTL else None,
        title=body.title,
        description=body.description,
        details=body.details,
        webhook_url=webhook_url,
        webhook_secret=webhooks.new_secret() if webhook_url else None,
    )


def _approvers_of(body: CreateTokenRequest, now: datetime, timeout_at: datetime | None) -> dict:
    """The named approvers' part of a new token (``approvers``, ``requiredApprovals``,
    ``requestedBy``, ``reminders``), checked against each other."""
    first_of_each: dict = {}
    for approver in body.approvers or ():
        first_of_each.setdefault(approver.email, approver)
    listed = list(first_of_each.values())
    if not listed:
        for name in ("requiredApprovals", "reminders"):
            if getattr(body, name) is not None:
                raise ApiError(400, f"{name}: needs approvers")
        return {"requested_by": body.requestedBy}
    required = body.requiredApprovals or 1
    if required > len(listed):
        raise ApiError(
            400, f"requiredApprovals: must be at most the number of approvers ({len(listed)})"
        )
    eligible = [a for a in listed if a.email != body.requestedBy]
    if required > len(eligible):
        raise ApiError(
            400,
            f"requestedBy: {body.requestedBy} cannot approve their own request, which leaves "
            f"{len(eligible)} possible approver(s) for requiredApprovals {required}",
        )
    reminders = sorted({parse_duration(text) for text in body.reminders or ()})
    if timeout_at is not None and any(now + after >= timeout_at for after in reminders):
        raise ApiError(400, "reminders: each reminder must come before the timeout")
    if not mailer.can_send(current_app.config):
        raise ApiError(400, "approvers: " + mailer.CANNOT_SEND)
    return {
        "approvers": tuple(lifecycle.NewApprover(a.email, a.name) for a in listed),
        "required_approvals": required,
        "requested_by": body.requestedBy,
        "reminders": tuple(reminders),
    }


@bp.get(f"{TOKENS}/<token_id>")
@require_api_key
def retrieve_token(token_id: str):
    now = utcnow()
    token = lifecycle.settled(_project_token(token_id), now)
    return jsonify(token_json(token, now, with_output=True))


MAX_WAIT = timedelta(seconds=60)


@bp.get(f"{TOKENS}/<token_id>/wait")
@require_api_key
def wait_for_token(token_id: str):
    """Long poll: answer once the token leaves WAITING, or when the window ends."""
    window = _wait_window(request.args.get("timeout", "30s"))
    token = lifecycle.settled(_project_token(token_id), utcnow())
    if token.status == WAITING and window:
        hub = current_app.extensions["waitpoint_waits"]
        hub.wait_for(token, window.total_seconds(), client_gone(request.environ))
        token = lifecycle.settled(_project_token(token_id), utcnow())
    return jsonify(token_json(token, utcnow(), with_output=True))


def _wait_window(text: str) -> timedelta:
    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise ApiError(400, f"timeout: {exc}") from None
    if window > MAX_WAIT:
        raise ApiError(400, "timeout: must be at most 60s")
    return window


@bp.get(TOKENS)
@require_api_key
def list_tokens():
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise ApiError(400, f"{repeated[0]}: may be given only once")
    query = parse_model(ListTokensQuery, request.args.to_dict())
    if query.page_after and query.page_before:
        raise ApiError(400, "page[after]: cannot be combined with page[before]")
    now = utcnow()
    page = token_list.list_tokens(
        g.project_id,
        _token_filter(query, now),
        now,
        size=query.page_size,
        after=_cursor("page[after]", query.page_after),
        before=_cursor("page[before]", query.page_before),
    )
    pagination = {}
    if page.next_cursor:
        pagination["next"] = page.next_cursor
    if page.previous_cursor:
        pagination["previous"] = page.previous_cursor
    tokens = lifecycle.settle_overdue(page.tokens, now)
    if query.statuses():
        # A token the filter took for overdue may have been completed as it was read.
        tokens = [t for t in tokens if t.status in query.statuses()]
    base_url = capability.public_base_url()
    data = [token_json(t, now, base_url=base_url) for t in tokens]
    return jsonify(data=data, pagination=pagination)


def _cursor(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return token_list.decode_cursor(value)
    except token_list.BadCursor as exc:
        raise ApiError(400, f"{name}: {exc}") from None


def _token_filter(query: ListTokensQuery, now: datetime) -> token_list.TokenFilter:
    created_from = _instant("filter[createdAt][from]", query.created_from)
    created_to = _instant("filter[createdAt][to]", query.created_to)
    if query.period is not None:
        since = now - parse_duration(query.period)
        created_from = max(created_from, since) if created_from else since
    return token_list.TokenFilter(
        statuses=query.statuses(),
        tags=query.tag_list(),
        idempotency_key_hash=(
            lifecycle.idempotency_hash(query.idempotency_key) if query.idempotency_key else None
        ),
        created_from=created_from,
        created_to=created_to,
        approver=query.approver,
    )


def _instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except (ValueError, OverflowError, OSError) as exc:
        raise ApiError(400, f"{name}: {exc}") from None


@bp.post(f"{TOKENS}/<token_id>/complete")
@require_api_key
def complete_token(token_id: str):
    body = parse_model(
        CompleteTokenRequest,
        read_json_object(current_app.config["WAITPOINT_COMPLETE_MAX_BYTES"]),
    )
    token = _project_token(token_id)
    output = lifecycle.to_json_text(body.data) if "data" in body.model_fields_set else None
    record = completion_record("api")
    return _completion_response(token, output, record)


@bp.post(f"{TOKENS}/<token_id>/cancel")
@require_api_key
def cancel_token(token_id: str):
    """Withdraw a waiting token (a Waitpoint extension): COMPLETED, with an error output."""
    body = parse_model(CancelTokenRequest, read_json_object(CANCEL_MAX_BYTES))
    token = _project_token(token_id)
    applied = lifecycle.cancel_token(token.pk, body.reason, completion_record("cancel"))
    return _completion_answer(token, applied)


CANCEL_MAX_BYTES = 16 * 1024


@bp.post(f"{TOKENS}/<token_id>/callback/<signature>")
def callback(token_id: str, signature: str):
    """The capability URL: no API key; the signature is the permission."""
    if not capability.signed(token_id, signature):
        raise _not_a_callback_url()
    data = read_json_body(current_app.config["WAITPOINT_COMPLETE_MAX_BYTES"], lenient=True)
    # The body is in: the token is read in the transaction that completes it (on SQLite
    # one write transaction instead of a read one and then a write one).
    write_transaction()
    token = stored.find_token(token_id)
    if token is None:
        raise _not_a_callback_url()
    record = completion_record("callback")
    return _completion_response(token, lifecycle.to_json_text(data), record)


def _not_a_callback_url() -> ApiError:
    """The same 404 for a bad signature and an unknown id."""
    return ApiError(404, "token: not found (the URL is not valid)")


def _completion_response(
    token: StoredToken, output: str | None, record: lifecycle.CompletionRecord
):
    return _completion_answer(token, lifecycle.complete_token(token.pk, output, record))


def _completion_answer(token: StoredToken, applied: bool):
    # Not applied: someone else decided it, or the deadline had passed (then this call
    # stored TIMED_OUT): report what is stored.
    status = COMPLETED if applied else stored.token_by_pk(token.pk).status
    return jsonify(success=True, applied=applied, status=status)


def _project_token(token_id: str) -> StoredToken:
    token = stored.find_token(token_id, g.project_id)
    if token is None:
        raise ApiError(404, "token: not found")
    return token
