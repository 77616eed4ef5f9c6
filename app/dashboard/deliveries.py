"""The delivery log as the dashboard shows it (an endpoint's page, a token's page)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..domain import webhooks
from ..domain.stored import ID_PREFIX
from ..extensions import db
from ..models import Delivery, DeliveryAttempt, Event, Token

LOG_SIZE = 50


@dataclass
class DeliveryRow:
    """A delivery as the log shows it: what was sent, where, and every try."""

    delivery: Delivery
    event_type: str
    token_id: str | None  # as the pages show it (``waitpoint_...``)
    attempts: list[DeliveryAttempt]

    @property
    def token_short(self) -> str:
        return (self.token_id or "").removeprefix(ID_PREFIX)[:8]


def delivery_log(project_id: int, **which) -> list[DeliveryRow]:
    """The newest deliveries (``endpoint_id=`` or ``token_pk=``) in four queries."""
    found = webhooks.deliveries(project_id, limit=LOG_SIZE, **which)
    if not found:
        return []
    types = dict(
        db.session.execute(
            select(Event.id, Event.type).where(Event.id.in_({d.event_id for d in found}))
        ).all()
    )
    token_ids = {
        pk: ID_PREFIX + public_id
        for pk, public_id in db.session.execute(
            select(Token.pk, Token.public_id).where(Token.pk.in_({d.token_pk for d in found}))
        )
    }
    tries: dict[int, list[DeliveryAttempt]] = {d.id: [] for d in found}
    query = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(tries))
    for attempt in db.session.execute(query.order_by(DeliveryAttempt.id)).scalars():
        tries[attempt.delivery_id].append(attempt)
    return [
        DeliveryRow(d, types.get(d.event_id, "?"), token_ids.get(d.token_pk), tries[d.id])
        for d in found
    ]
