"""Webhook endpoints and deliveries, as the CLI, the API and the dashboard manage them.

Sending is ``infra.webhooks``; enqueueing is ``outbox`` (with the events). Here: what an
endpoint is (a URL, the event types it wants, a Standard Webhooks secret, enabled or
not), what a delivery looks like to a person, redelivery, and the body of an event.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update

from ..extensions import db
from ..infra.database import write_transaction
from ..models import WAITING, Delivery, DeliveryAttempt, Event, Token, WebhookEndpoint
from .stored import ID_PREFIX, StoredToken
from .timeutil import isoformat
from .wire import token_json

EVENT_TYPES = ("waitpoint.created", "waitpoint.completed", "waitpoint.timed_out")
SECRET_PREFIX = "whsec_"
URL_MAX = 2048


class WebhookError(ValueError):
    """A value an endpoint cannot have; the message names the field."""


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def check_url(url: str, field: str = "url") -> str:
    """An absolute http(s) URL with a host, without credentials or a fragment."""
    url = url.strip() if isinstance(url, str) else url
    if not isinstance(url, str) or not url:
        raise WebhookError(f"{field}: must be an http(s) URL")
    if len(url) > URL_MAX:
        raise WebhookError(f"{field}: must be at most {URL_MAX} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"{field}: must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise WebhookError(f"{field}: must not carry a user name or password")
    if parts.fragment:
        raise WebhookError(f"{field}: must not have a #fragment")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise WebhookError(f"{field}: must not contain spaces or control characters")
    return url


def check_event_types(types, field: str = "eventTypes") -> list[str]:
    """A list of known event types, duplicates removed; empty (or None) means all."""
    if types is None:
        return []
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise WebhookError(f"{field}: must be a list of event types")
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise WebhookError(
            f"{field}: unknown event type {unknown[0]!r} (use {', '.join(EVENT_TYPES)})"
        )
    return list(dict.fromkeys(types))


def named_types(endpoint: WebhookEndpoint) -> list[str]:
    """The event types an endpoint named; an empty list means it gets every type."""
    return json.loads(endpoint.event_types)


# -- endpoints -------------------------------------------------------------------


def create_endpoint(
    project_id: int, url: str, event_types: list[str] | None, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint, and its secret (shown once by whoever created it)."""
    url = check_url(url)
    types = check_event_types(event_types)
    secret = new_secret()
    write_transaction()
    endpoint = WebhookEndpoint(
        project_id=project_id,
        url=url,
        event_types=json.dumps(types),
        secret=secret,
        enabled=True,
        created_at=now,
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint, secret


def endpoints(project_id: int) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id)
    return list(db.session.execute(query.order_by(WebhookEndpoint.id)).scalars())


def endpoint(project_id: int, endpoint_id: int) -> WebhookEndpoint | None:
    """The project's endpoint with this id; None for another project's, as for none."""
    found = db.session.get(WebhookEndpoint, endpoint_id)
    return found if found is not None and found.project_id == project_id else None


def set_enabled(
    project_id: int, endpoint_id: int, enabled: bool, reason: str | None = None
) -> WebhookEndpoint | None:
    """Enable (clearing its failure streak) or disable an endpoint; None if not found."""
    return update_endpoint(project_id, endpoint_id, enabled=enabled, reason=reason)


def rotate_secret(project_id: int, endpoint_id: int) -> str | None:
    """A new secret for the endpoint (the old one stops signing at once); None if not found."""
    write_transaction()
    found = endpoint(project_id, endpoint_id)
    secret = None
    if found is not None:
        secret = found.secret = new_secret()
    db.session.commit()
    return secret


def update_endpoint(
    project_id: int,
    endpoint_id: int,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
    reason: str | None = None,
) -> WebhookEndpoint | None:
    """Change what is given (None leaves a field as it is) in one transaction; None if
    not found. Enabling clears the failure streak, as ``set_enabled`` does."""
    url = check_url(url) if url is not None else None
    types = check_event_types(event_types) if event_types is not None else None
    write_transaction()
    found = endpoint(project_id, endpoint_id)
    if found is not None:
        if url is not None:
            found.url = url
        if types is not None:
            found.event_types = json.dumps(types)
        if enabled is not None and enabled != found.enabled:
            found.enabled = enabled
            found.disabled_reason = None if enabled else (reason or "disabled by an operator")
            if enabled:
                found.failing_since = None
    db.session.commit()
    return found


def remove_endpoint(project_id: int, endpoint_id: int) -> bool:
    """Delete an endpoint with its deliveries; False if not found."""
    write_transaction()
    found = endpoint(project_id, endpoint_id)
    if found is not None:
        db.session.delete(found)
    db.session.commit()
    return found is not None


# -- deliveries ------------------------------------------------------------------


def deliveries(project_id: int, *, endpoint_id=None, token_pk=None, limit=50) -> list[Delivery]:
    """The newest deliveries of an endpoint or of a token (with their attempts)."""
    query = select(Delivery).where(Delivery.project_id == project_id)
    if endpoint_id is not None:
        query = query.where(Delivery.endpoint_id == endpoint_id)
    if token_pk is not None:
        query = query.where(Delivery.token_pk == token_pk)
    return list(db.session.execute(query.order_by(Delivery.id.desc()).limit(limit)).scalars())


@dataclass(frozen=True)
class DeliveryLog:
    """A delivery as a person reads it: what event, of which token, and every attempt."""

    delivery: Delivery
    event_type: str
    token_id: str  # the public id, waitpoint_...
    attempts: list[DeliveryAttempt]

    @property
    def token_short(self) -> str:
        """The start of the token's id, as lists show it."""
        return self.token_id.removeprefix(ID_PREFIX)[:8]


def delivery_log(
    project_id: int, *, endpoint_id=None, token_pk=None, limit=50
) -> list[DeliveryLog]:
    """``deliveries`` with their event types, token ids and attempts, in four queries."""
    return describe(deliveries(project_id, endpoint_id=endpoint_id, token_pk=token_pk, limit=limit))


def describe(found: list[Delivery]) -> list[DeliveryLog]:
    if not found:
        return []
    types = dict(
        db.session.execute(
            select(Event.id, Event.type).where(Event.id.in_({d.event_id for d in found}))
        ).all()
    )
    token_ids = dict(
        db.session.execute(
            select(Token.pk, Token.public_id).where(Token.pk.in_({d.token_pk for d in found}))
        ).all()
    )
    tries: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    query = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_([d.id for d in found]))
    for attempt in db.session.execute(query.order_by(DeliveryAttempt.id)).scalars():
        tries[attempt.delivery_id].append(attempt)
    return [
        DeliveryLog(d, types[d.event_id], ID_PREFIX + token_ids[d.token_pk], tries[d.id])
        for d in found
    ]


def delivery(project_id: int, delivery_id: int) -> Delivery | None:
    found = db.session.get(Delivery, delivery_id)
    return found if found is not None and found.project_id == project_id else None


def redeliver(project_id: int, delivery_id: int, now: datetime) -> bool:
    """Send a delivery again, now, with a fresh set of retries (same ``webhook-id``).
    False if there is no such delivery in the project."""
    write_transaction()
    done = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.project_id == project_id)
        .values(status="pending", attempts=0, next_attempt_at=now, claimed_until=None)
    ).rowcount
    db.session.commit()
    return done == 1


# -- the body of an event --------------------------------------------------------


def event_body(event: Event, token: StoredToken) -> dict:
    """``{"type", "timestamp", "data"}``: ``data`` is the token as retrieve showed it when
    the event happened. A token never changes after its final status, so a completed or
    timed-out event shows the token as it is; a created event shows it as it was created."""
    if event.type == "waitpoint.created":
        token = replace(token, status=WAITING, finished_at=None, output=None, completion=None)
    return {
        "type": event.type,
        "timestamp": isoformat(event.created_at),
        "data": token_json(token, event.created_at, with_output=True),
    }
