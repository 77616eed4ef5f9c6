"""The webhook sender: sends what the outbox holds, signed, and records how it went.

``deliver_due`` is a plain function, like the sweep: the scheduler's job calls it in
every server process (and at once when this process enqueued something), ``waitpoint
deliver`` and the tests call it too. One pass:

1. **claim** due pending deliveries in id order, in a short write transaction, by setting
   ``claimed_until`` (PostgreSQL: ``FOR UPDATE SKIP LOCKED`` under a transaction advisory
   lock; SQLite: the one writer). A destination (an endpoint, or a token's own URL) that
   another sender is working on is left to it, so one destination's events go out one at
   a time, in order. A claim that expired (its sender crashed) can be taken again;
2. **send**, outside any transaction: each destination's deliveries one after another,
   destinations side by side (``outbound``: checked addresses, no redirects);
3. **record**: an attempt row each, and the delivery's outcome (delivered, retried later
   on ``RETRY_DELAYS`` with jitter, or failed), only if the claim is still this sender's.

At least once: a sender that dies between sending and recording leaves a claim that
expires, and the delivery is sent again (same ``webhook-id``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, insert, select, text, update
from standardwebhooks import Webhook

from ..domain import capability, stored
from ..domain.timeutil import utcnow
from ..domain.webhooks import event_body
from ..extensions import db
from ..models import Delivery, DeliveryAttempt, Event, Token, UTCDateTime, WebhookEndpoint
from . import metrics
from .database import write_transaction
from .outbound import AddressPolicy, Answer, Sender, split_host

log = logging.getLogger(__name__)

# After the nth failed attempt, the next one comes this much later (±10 %); after the
# last, the delivery has failed: 8 attempts over about 27 hours (Standard Webhooks' own).
RETRY_DELAYS = tuple(
    timedelta(seconds=s) for s in (5, 300, 1800, 7200, 5 * 3600, 10 * 3600, 10 * 3600)
)
JITTER = 0.1
# A batch stops starting sends after this long; unsent ones go back to the queue. A
# claim lasts this plus two time-outs (and a margin), so it outlives its batch.
BATCH_BUDGET = 30.0
MAX_PARALLEL = 8  # destinations sent to at once by one pass
_CLAIM_LOCK = 7_310_226_012  # PostgreSQL advisory lock: one claim at a time

DELIVERIES = Delivery.__table__
EVENTS = Event.__table__
ENDPOINTS = WebhookEndpoint.__table__


def destination(table):
    """An endpoint, or (negative) the token whose own URL it is: one queue each."""
    return func.coalesce(table.c.endpoint_id, -table.c.token_pk)


def _claim_statement():
    busy = DELIVERIES.alias("busy")
    due = (
        select(DELIVERIES.c.id)
        .where(
            DELIVERIES.c.status == "pending",
            DELIVERIES.c.next_attempt_at <= bindparam("now", type_=UTCDateTime),
            (DELIVERIES.c.claimed_until.is_(None))
            | (DELIVERIES.c.claimed_until <= bindparam("now", type_=UTCDateTime)),
            destination(DELIVERIES).not_in(
                select(destination(busy)).where(
                    busy.c.status == "pending",
                    busy.c.claimed_until > bindparam("now", type_=UTCDateTime),
                )
            ),
        )
        .order_by(DELIVERIES.c.id)
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=bindparam("until", type_=UTCDateTime))
        .returning(
            DELIVERIES.c.id,
            DELIVERIES.c.event_id,
            DELIVERIES.c.endpoint_id,
            DELIVERIES.c.token_pk,
            DELIVERIES.c.url,
            DELIVERIES.c.attempts,
        )
    )


_CLAIM = _claim_statement()
_RECORD = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("b_id"),
        DELIVERIES.c.claimed_until == bindparam("b_claim", type_=UTCDateTime),
    )
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next", type_=UTCDateTime),
        claimed_until=None,
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        delivered_at=bindparam("b_delivered", type_=UTCDateTime),
    )
)
_RELEASE = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("b_id"),
        DELIVERIES.c.claimed_until == bindparam("b_claim", type_=UTCDateTime),
    )
    .values(claimed_until=None)
)
_DISABLED_ENDPOINT = "not sent: the endpoint is disabled"


@dataclass
class _Job:
    """One claimed delivery, ready to send (``body`` and ``headers`` signed) or not."""

    id: int
    destination: int
    endpoint_id: int | None
    url: str
    attempts: int
    body: bytes = b""
    msg_id: str = ""
    secret: str | None = None
    answer: Answer | None = None
    attempted_at: datetime | None = None


def deliver_due(now: datetime | None = None, batch: int | None = None) -> int:
    """Send every due delivery, in batches; how many attempts this call made.

    Needs an app context. ``now`` is for tests that move time: due-ness, the attempts'
    times and the retry schedule follow it (the signature's timestamp is always the
    real time of sending, as receivers check it against their clock).
    """
    config = current_app.config
    batch = batch or config["WAITPOINT_WEBHOOK_BATCH"]
    policy = AddressPolicy(config["WAITPOINT_WEBHOOK_ALLOW_PRIVATE"])
    timeout = config["WAITPOINT_WEBHOOK_TIMEOUT"]
    lease = timedelta(seconds=BATCH_BUDGET + 2 * timeout + 30)
    total = 0
    while True:
        started = now or utcnow()
        claim_until = started + lease
        jobs = _claim(started, claim_until, batch)
        if not jobs:
            return total
        capability.warn_without_public_url()
        unsent = _prepare(jobs)
        _send(jobs, policy, timeout, now)
        _record(jobs, unsent, claim_until, config["WAITPOINT_WEBHOOK_DISABLE_AFTER"])
        total += sum(1 for job in jobs if job.answer is not None)
        if len(jobs) < batch:
            return total


def _claim(now: datetime, until: datetime, batch: int) -> list[_Job]:
    # Look before locking: most passes find nothing, and should not take the write lock.
    due = select(DELIVERIES.c.id).where(
        DELIVERIES.c.status == "pending", DELIVERIES.c.next_attempt_at <= now
    )
    if db.session.execute(due.limit(1)).first() is None:
        db.session.commit()
        return []
    write_transaction()
    if db.session.get_bind().dialect.name == "postgresql":
        # Claims one at a time: each sees the destinations the others just took.
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CLAIM_LOCK})
    rows = db.session.execute(_CLAIM, {"now": now, "until": until, "batch": batch}).all()
    db.session.commit()
    return [
        _Job(
            id=row.id,
            destination=row.endpoint_id if row.endpoint_id is not None else -row.token_pk,
            endpoint_id=row.endpoint_id,
            url=row.url,
            attempts=row.attempts,
        )
        for row in sorted(rows, key=lambda row: row.id)
    ]


def _prepare(jobs: list[_Job]) -> list[_Job]:
    """Bodies, ids and secrets of the claimed deliveries (one read transaction); the ones
    not to send (their endpoint was disabled since) are returned."""
    ids = [job.id for job in jobs]
    rows = db.session.execute(
        select(
            DELIVERIES.c.id,
            EVENTS.c.id.label("event_id"),
            EVENTS.c.type,
            EVENTS.c.created_at,
            EVENTS.c.token_pk,
            ENDPOINTS.c.secret.label("endpoint_secret"),
            ENDPOINTS.c.enabled,
            Token.webhook_secret.label("token_secret"),
        )
        .select_from(
            DELIVERIES.join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
            .join(Token.__table__, Token.pk == DELIVERIES.c.token_pk)
            .outerjoin(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        )
        .where(DELIVERIES.c.id.in_(ids))
    ).all()
    by_id = {row.id: row for row in rows}
    tokens = stored.tokens_by_pks({row.token_pk for row in rows})
    unsent = []
    for job in jobs:
        row = by_id.get(job.id)
        if row is None or (job.endpoint_id is not None and not row.enabled):
            unsent.append(job)
            continue
        job.secret = row.endpoint_secret if job.endpoint_id is not None else row.token_secret
        job.msg_id = f"evt_{row.event_id}"
        body = event_body(row, tokens[row.token_pk])
        job.body = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    db.session.commit()
    return unsent


def _send(jobs: list[_Job], policy: AddressPolicy, timeout: float, now: datetime | None):
    """Each destination's jobs in order, in a thread of its own; a batch that ran past its
    budget starts no more sends (those go back to the queue unsent)."""
    queues: dict[int, list[_Job]] = {}
    for job in jobs:
        if job.secret is not None:
            queues.setdefault(job.destination, []).append(job)
    if not queues:
        return
    deadline = time.monotonic() + BATCH_BUDGET

    def send_queue(queue: list[_Job]) -> None:
        sender = Sender(policy, timeout)
        try:
            for job in queue:
                if time.monotonic() > deadline:
                    return
                job.attempted_at = now or utcnow()
                timestamp = utcnow()
                headers = {
                    "webhook-id": job.msg_id,
                    "webhook-timestamp": str(int(timestamp.timestamp())),
                    "webhook-signature": Webhook(job.secret).sign(
                        job.msg_id, timestamp, job.body.decode()
                    ),
                }
                job.answer = sender.post(job.url, job.body, headers)
                metrics.webhook_attempted(job.answer.kind, job.answer.seconds)
        finally:
            sender.close()

    if len(queues) == 1:
        send_queue(next(iter(queues.values())))
        return
    with ThreadPoolExecutor(min(MAX_PARALLEL, len(queues)), "webhook-send") as pool:
        list(pool.map(send_queue, queues.values()))


def _record(jobs: list[_Job], unsent: list[_Job], claim: datetime, disable_after: float):
    """The attempts, each delivery's outcome, and its endpoint's failure streak."""
    attempts, outcomes, released = [], [], []
    succeeded, failing_at = set(), {}
    skipped = {job.id for job in unsent}
    for job in jobs:
        if job.id in skipped:
            outcomes.append(_outcome(job, claim, "failed", utcnow(), _DISABLED_ENDPOINT))
            continue
        answer = job.answer
        if answer is None:  # the batch ran out of time before its turn
            released.append({"b_id": job.id, "b_claim": claim})
            continue
        at = job.attempted_at
        attempts.append(
            {
                "delivery_id": job.id,
                "attempted_at": at,
                "duration_ms": round(answer.seconds * 1000, 3),
                "status_code": answer.status_code,
                "response_excerpt": answer.excerpt,
                "error": answer.error,
            }
        )
        number = job.attempts + 1
        if answer.ok:
            outcome = _outcome(job, claim, "delivered", at, None, answer, delivered_at=at)
            if job.endpoint_id is not None:
                succeeded.add(job.endpoint_id)
        else:
            if number > len(RETRY_DELAYS):
                outcome = _outcome(job, claim, "failed", at, answer.error, answer)
                metrics.webhook_failed()
                log.warning(
                    "webhook delivery %d to %s failed for good after %d attempts: %s",
                    job.id,
                    split_host(job.url),
                    number,
                    answer.error,
                )
            else:
                delay = RETRY_DELAYS[number - 1] * random.uniform(1 - JITTER, 1 + JITTER)
                outcome = _outcome(job, claim, "pending", at + delay, answer.error, answer)
            if job.endpoint_id is not None:
                failing_at[job.endpoint_id] = at
        outcome["b_attempts"] = number
        outcomes.append(outcome)
    write_transaction()
    if attempts:
        db.session.execute(insert(DeliveryAttempt.__table__), attempts)
    if outcomes:
        db.session.execute(_RECORD, outcomes)
    if released:
        db.session.execute(_RELEASE, released)
    _track_endpoints(succeeded, {k: v for k, v in failing_at.items() if k not in succeeded})
    disabled = _disable_failing(failing_at, succeeded, disable_after)
    db.session.commit()
    for endpoint_id in disabled:
        log.warning(
            "webhook endpoint %d disabled: %s", endpoint_id, _disabled_reason(disable_after)
        )


def _outcome(job, claim, status, next_at, error, answer=None, delivered_at=None) -> dict:
    """The parameters of ``_RECORD`` for one delivery."""
    return {
        "b_id": job.id,
        "b_claim": claim,
        "b_status": status,
        "b_attempts": job.attempts,
        "b_next": next_at,
        "b_code": answer.status_code if answer is not None else None,
        "b_error": error,
        "b_delivered": delivered_at,
    }


def _track_endpoints(succeeded: set[int], failed: dict[int, datetime]) -> None:
    """Any success ends an endpoint's failure streak; a failure starts one if none runs."""
    if succeeded:
        db.session.execute(
            update(ENDPOINTS).where(ENDPOINTS.c.id.in_(succeeded)).values(failing_since=None)
        )
    for endpoint_id, at in failed.items():
        db.session.execute(
            update(ENDPOINTS)
            .where(ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.failing_since.is_(None))
            .values(failing_since=at)
        )


def _disabled_reason(disable_after: float) -> str:
    days = disable_after / 86400
    span = f"{days:g} days" if days >= 1 else f"{disable_after / 3600:g} hours"
    return f"disabled automatically: every delivery failed for {span}"


def _disable_failing(failing_at: dict, succeeded: set, disable_after: float) -> list[int]:
    """Endpoints whose every delivery has failed for ``disable_after`` are disabled."""
    disabled = []
    for endpoint_id, at in failing_at.items():
        if endpoint_id in succeeded:
            continue
        done = db.session.execute(
            update(ENDPOINTS)
            .where(
                ENDPOINTS.c.id == endpoint_id,
                ENDPOINTS.c.enabled.is_(True),
                ENDPOINTS.c.failing_since <= at - timedelta(seconds=disable_after),
            )
            .values(enabled=False, disabled_reason=_disabled_reason(disable_after))
        ).rowcount
        if done:
            disabled.append(endpoint_id)
    return disabled
