"""The webhook outbox: deliveries written in the same transaction as their events.

An event that commits has its deliveries committed with it, one per enabled endpoint of
its project that wants its type, and one to its token's own ``webhook_url`` if it has
one. Sending happens later, in the background (``infra.webhooks``), so nothing that was
acknowledged is lost whatever crashes after the commit, and no request waits for a
receiver.
"""

from __future__ import annotations

from blinker import Namespace
from sqlalchemy import String, and_, bindparam, insert, literal, null, or_, select, true, union_all

from ..extensions import db
from ..models import Delivery, Event, Token, WebhookEndpoint

EVENTS = Event.__table__
ENDPOINTS = WebhookEndpoint.__table__
DELIVERIES = Delivery.__table__
TOKENS = Token.__table__

# Sent after a commit that enqueued deliveries: wakes this process's sender at once.
deliveries_enqueued = Namespace().signal("deliveries-enqueued")


def _wants(event_type):
    """The endpoint takes every type ([]), or names this one in its JSON array."""
    quoted = literal('"', String) + event_type + literal('"', String)
    return or_(
        ENDPOINTS.c.event_types == "[]",
        ENDPOINTS.c.event_types.contains(quoted, autoescape=False),
    )


def _build(which_events):
    events = EVENTS.c
    common = (
        events.project_id,
        events.token_pk,
        literal("pending", String),
        literal(0),
        events.created_at,
        events.created_at,
    )
    to_endpoints = (
        select(events.id, ENDPOINTS.c.id, ENDPOINTS.c.url, *common)
        .select_from(
            EVENTS.join(
                ENDPOINTS,
                and_(
                    ENDPOINTS.c.project_id == events.project_id,
                    ENDPOINTS.c.enabled == true(),
                    _wants(events.type),
                ),
            )
        )
        .where(which_events)
    )
    to_token = (
        select(events.id, null(), TOKENS.c.webhook_url, *common)
        .select_from(
            EVENTS.join(
                TOKENS, and_(TOKENS.c.pk == events.token_pk, TOKENS.c.webhook_url.is_not(None))
            )
        )
        .where(which_events)
    )
    columns = (
        "event_id",
        "endpoint_id",
        "url",
        "project_id",
        "token_pk",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    )
    return insert(DELIVERIES).from_select(columns, union_all(to_endpoints, to_token))


# One event (a create, a completion) has a statement of its own: an expanding IN list is
# rendered into the SQL text again at every execution, which cost a create ~0.25 ms.
_ENQUEUE_ONE = _build(EVENTS.c.id == bindparam("event_id"))
_ENQUEUE_MANY = _build(EVENTS.c.id.in_(bindparam("event_ids", expanding=True)))


def enqueue(event_ids: list[int]) -> int:
    """Write the deliveries of these just-written events; how many there are."""
    if not event_ids:
        return 0
    if len(event_ids) == 1:
        return db.session.execute(_ENQUEUE_ONE, {"event_id": event_ids[0]}).rowcount
    return db.session.execute(_ENQUEUE_MANY, {"event_ids": event_ids}).rowcount
