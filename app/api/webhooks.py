"""Webhook endpoint and delivery routes, as the API reference describes them (``docs/api.md``).

Views translate HTTP only: parse, call one ``domain.webhooks`` function, serialize. The
secret of an endpoint is in the answers of create and rotate-secret, and nowhere else.
Another project's endpoint or delivery is a 404, exactly like an id that does not exist.
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request

from ..domain import stored, webhooks
from ..domain.timeutil import isoformat, utcnow
from ..models import WebhookEndpoint
from . import bp
from .auth import require_api_key
from .bodies import parse_model, read_json_object
from .errors import ApiError
from .schemas import CreateWebhookRequest, ListDeliveriesQuery, UpdateWebhookRequest

WEBHOOKS = "/v1/webhooks"
# Largest ids the columns hold: a larger one in a path is simply not found (a database
# would refuse to compare with it).
MAX_ENDPOINT_ID = 2**31 - 1
MAX_DELIVERY_ID = 2**63 - 1


@bp.get(WEBHOOKS)
@require_api_key
def list_webhook_endpoints():
    return jsonify(data=[endpoint_json(e) for e in webhooks.endpoints(g.project_id)])


@bp.post(WEBHOOKS)
@require_api_key
def create_webhook_endpoint():
    body = parse_model(CreateWebhookRequest, _body())
    try:
        endpoint, secret = webhooks.create_endpoint(
            g.project_id, body.url, body.eventTypes, utcnow()
        )
    except webhooks.WebhookError as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify(endpoint_json(endpoint) | {"secret": secret}), 201


@bp.get(f"{WEBHOOKS}/<int:endpoint_id>")
@require_api_key
def retrieve_webhook_endpoint(endpoint_id: int):
    return jsonify(endpoint_json(_endpoint(endpoint_id)))


@bp.patch(f"{WEBHOOKS}/<int:endpoint_id>")
@require_api_key
def update_webhook_endpoint(endpoint_id: int):
    _endpoint(endpoint_id)  # a 404 before a 400 about the values
    body = parse_model(UpdateWebhookRequest, _body())
    try:
        endpoint = webhooks.update_endpoint(
            g.project_id,
            endpoint_id,
            url=body.url,
            event_types=body.eventTypes,
            enabled=body.enabled,
            reason="disabled through the API",
        )
    except webhooks.WebhookError as exc:
        raise ApiError(400, str(exc)) from None
    if endpoint is None:  # removed meanwhile
        raise ApiError(404, "webhook endpoint: not found")
    return jsonify(endpoint_json(endpoint))


@bp.post(f"{WEBHOOKS}/<int:endpoint_id>/rotate-secret")
@require_api_key
def rotate_webhook_secret(endpoint_id: int):
    _endpoint(endpoint_id)
    secret = webhooks.rotate_secret(g.project_id, endpoint_id)
    if secret is None:
        raise ApiError(404, "webhook endpoint: not found")
    return jsonify(endpoint_json(_endpoint(endpoint_id)) | {"secret": secret})


@bp.delete(f"{WEBHOOKS}/<int:endpoint_id>")
@require_api_key
def delete_webhook_endpoint(endpoint_id: int):
    _endpoint(endpoint_id)
    if not webhooks.remove_endpoint(g.project_id, endpoint_id):
        raise ApiError(404, "webhook endpoint: not found")
    return "", 204


@bp.get(f"{WEBHOOKS}/<int:endpoint_id>/deliveries")
@require_api_key
def list_endpoint_deliveries(endpoint_id: int):
    query = _deliveries_query()
    _endpoint(endpoint_id)
    log = webhooks.delivery_log(g.project_id, endpoint_id=endpoint_id, limit=query.limit)
    return jsonify(data=[delivery_json(entry) for entry in log])


@bp.get("/v1/waitpoints/tokens/<token_id>/deliveries")
@require_api_key
def list_token_deliveries(token_id: str):
    query = _deliveries_query()
    token = stored.find_token(token_id, g.project_id)
    if token is None:
        raise ApiError(404, "token: not found")
    log = webhooks.delivery_log(g.project_id, token_pk=token.pk, limit=query.limit)
    return jsonify(data=[delivery_json(entry) for entry in log])


@bp.post("/v1/deliveries/<int:delivery_id>/redeliver")
@require_api_key
def redeliver(delivery_id: int):
    found = webhooks.delivery(g.project_id, delivery_id) if delivery_id <= MAX_DELIVERY_ID else None
    if found is None:
        raise ApiError(404, "delivery: not found")
    if found.endpoint_id is not None:
        endpoint = webhooks.endpoint(g.project_id, found.endpoint_id)
        if endpoint is not None and not endpoint.enabled:
            raise ApiError(409, "delivery: its endpoint is disabled; enable it first")
    if not webhooks.redeliver(g.project_id, delivery_id, utcnow()):
        raise ApiError(404, "delivery: not found")  # removed meanwhile
    (entry,) = webhooks.describe([webhooks.delivery(g.project_id, delivery_id)])
    return jsonify(delivery_json(entry)), 202


# -- reading and writing ----------------------------------------------------------


def _body() -> dict:
    return read_json_object(current_app.config["WAITPOINT_CREATE_MAX_BYTES"])


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    found = webhooks.endpoint(g.project_id, endpoint_id) if endpoint_id <= MAX_ENDPOINT_ID else None
    if found is None:
        raise ApiError(404, "webhook endpoint: not found")
    return found


def _deliveries_query() -> ListDeliveriesQuery:
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise ApiError(400, f"{repeated[0]}: may be given only once")
    return parse_model(ListDeliveriesQuery, request.args.to_dict())


def endpoint_json(endpoint: WebhookEndpoint) -> dict:
    """An endpoint without its secret; optional fields omitted, never null."""
    item = {
        "id": endpoint.id,
        "url": endpoint.url,
        "eventTypes": webhooks.named_types(endpoint),
        "enabled": endpoint.enabled,
    }
    if not endpoint.enabled and endpoint.disabled_reason:
        item["disabledReason"] = endpoint.disabled_reason
    if endpoint.failing_since is not None:
        item["failingSince"] = isoformat(endpoint.failing_since)
    item["createdAt"] = isoformat(endpoint.created_at)
    return item


def delivery_json(entry: webhooks.DeliveryLog) -> dict:
    d = entry.delivery
    item = {
        "id": d.id,
        "eventId": f"evt_{d.event_id}",  # as the webhook-id header names it
        "eventType": entry.event_type,
        "tokenId": entry.token_id,
    }
    if d.endpoint_id is not None:
        item["endpointId"] = d.endpoint_id
    item |= {"url": d.url, "status": d.status, "createdAt": isoformat(d.created_at)}
    if d.status == "pending":
        item["nextAttemptAt"] = isoformat(d.next_attempt_at)
    if d.delivered_at is not None:
        item["deliveredAt"] = isoformat(d.delivered_at)
    item["attempts"] = [_attempt_json(a) for a in entry.attempts]
    return item


def _attempt_json(attempt) -> dict:
    item = {"attemptedAt": isoformat(attempt.attempted_at), "durationMs": attempt.duration_ms}
    if attempt.status_code is not None:
        item["statusCode"] = attempt.status_code
    if attempt.response_excerpt is not None:
        item["response"] = attempt.response_excerpt
    if attempt.error is not None:
        item["error"] = attempt.error
    return item
