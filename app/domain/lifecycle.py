"""The token lifecycle: the only module that creates tokens or changes their status.

``WAITING`` -> ``COMPLETED`` | ``TIMED_OUT``, both final. Every transition is a
single conditional UPDATE on ``status = 'WAITING'``; a row count of 0 means that
someone else decided first, so any number of concurrent completions and sweeps,
in any number of processes, leave exactly one outcome. Each function commits
once, at its end, and takes ``now`` so that tests can move time.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

from blinker import Namespace
from flask import current_app
from sqlalchemy import String, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..infra import metrics
from ..infra.database import write_transaction
from ..models import (
    COMPLETED,
    TIMED_OUT,
    WAITING,
    Completion,
    Event,
    IdempotencyKey,
    Token,
    TokenTag,
)
from . import approvers, outbox, stored
from .approvers import NewApprover
from .credentials import new_public_id
from .stored import TOKENS, StoredToken
from .timeutil import isoformat, utcnow

# Hot paths read and write through the tables (SQLAlchemy Core): rows, not ORM objects.

# Sent after a commit that decided tokens (``token_pks=[...]``): wakes waiters here.
token_decided = Namespace().signal("token-decided")
# PostgreSQL channel that carries the same news to other processes, delivered on commit.
NOTIFY_CHANNEL = "waitpoint_decided"
_NOTIFY_CHUNK = 800  # pks per notification: stays under PostgreSQL's 8000-byte payload


def timeout_output(token: StoredToken) -> str:
    """The output of a timed-out token: its ``timeoutOutput`` if it has one, else the
    contract's WAITPOINT_TIMEOUT error (``outputIsError`` is true either way)."""
    if token.timeout_output is not None:
        return token.timeout_output
    message = f"Waitpoint timed out at {isoformat(token.timeout_at)}"
    return json.dumps({"code": "WAITPOINT_TIMEOUT", "message": message}, separators=(",", ":"))


def idempotency_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """What a create request asks for, already validated."""

    timeout_at: datetime | None = None
    tags: tuple[str, ...] = ()
    idempotency_key: str | None = None
    idempotency_ttl: timedelta | None = None
    title: str | None = None
    description: str | None = None
    details: dict | None = None
    webhook_url: str | None = None  # the token's own endpoint, signed with webhook_secret
    webhook_secret: str | None = None
    # Named approvers (``domain.approvers``): empty for a token anyone with the link decides.
    approvers: tuple[NewApprover, ...] = ()
    required_approvals: int | None = None
    requested_by: str | None = None
    reminders: tuple[timedelta, ...] = ()  # after creation: to approvers yet to answer
    # A response form (``domain.response_form``, JSON text), button labels, and what a
    # time-out outputs (JSON text; None: the WAITPOINT_TIMEOUT error).
    form_json: str | None = None
    approve_label: str | None = None
    reject_label: str | None = None
    timeout_output: str | None = None


@dataclass(frozen=True)
class CompletionRecord:
    """Who completes a token, stored with the completion if this request decides it."""

    source: str
    approved: bool | None = None
    actor: str | None = None
    comment: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def create_token(project_id: int, new: NewToken, now: datetime) -> tuple[StoredToken, bool]:
    """Create a token, or return the live one with the same idempotency key.

    Returns ``(token, is_cached)``. Two concurrent creates with one key meet at the
    primary key of ``idempotency_keys``: the loser rolls back and returns the winner's.
    """
    key_hash = idempotency_hash(new.idempotency_key) if new.idempotency_key else None
    for _attempt in range(3):
        write_transaction()
        if key_hash is not None:
            cached = _live_idempotent_token(project_id, key_hash, now)
            if cached is not None:
                db.session.commit()
                return cached, True
        try:
            # The key's row is inserted at once: on PostgreSQL a concurrent create with
            # the same key fails here (after waiting for the other), not at COMMIT.
            token, deliveries, mail = _insert_token(project_id, new, key_hash, now)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue  # another request took the key first: read its token
        metrics.token_created(project_id)
        if deliveries:
            outbox.deliveries_enqueued.send(current_app._get_current_object())
        if mail:
            approvers.mail_enqueued.send(current_app._get_current_object())
        return token, False
    raise RuntimeError("idempotency key kept changing hands; giving up after 3 attempts")


def _live_idempotent_token(project_id: int, key_hash: str, now: datetime) -> StoredToken | None:
    row = db.session.execute(
        _IDEMPOTENCY_KEY, {"project_id": project_id, "key_hash": key_hash}
    ).one_or_none()
    if row is None:
        return None
    if row.expires_at is None or row.expires_at > now:
        return stored.token_by_pk(row.token_pk)
    # Expired: free the key so that this request can take it.
    db.session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.project_id == project_id,
            IdempotencyKey.key_hash == key_hash,
            IdempotencyKey.expires_at <= now,
        )
    )
    return None


def _insert_token(
    project_id: int, new: NewToken, key_hash: str | None, now: datetime
) -> tuple[StoredToken, int, int]:
    """The new token, how many webhook deliveries its created event enqueued, and how many
    emails its approvers will get."""
    key_expires_at = now + new.idempotency_ttl if new.idempotency_ttl and key_hash else None
    row = db.session.execute(
        _INSERT_TOKEN,
        {
            "public_id": new_public_id(),
            "project_id": project_id,
            "status": WAITING,
            "created_at": now,
            "timeout_at": new.timeout_at,
            "idempotency_key": new.idempotency_key,
            "idempotency_key_hash": key_hash,
            "idempotency_key_expires_at": key_expires_at,
            "tags_json": json.dumps(list(new.tags)),
            "title": new.title,
            "description": new.description,
            "details_json": json.dumps(new.details) if new.details is not None else None,
            "webhook_url": new.webhook_url,
            "webhook_secret": new.webhook_secret,
            "required_approvals": new.required_approvals if new.approvers else None,
            "requested_by": new.requested_by,
            "form_json": new.form_json,
            "approve_label": new.approve_label,
            "reject_label": new.reject_label,
            "timeout_output": new.timeout_output,
        },
    ).one()
    token = stored.from_row(row)  # a new token: no completion to look for
    if new.tags:
        db.session.execute(
            _INSERT_TAGS,
            [
                {
                    "token_pk": token.pk,
                    "tag": tag,
                    "project_id": project_id,
                    "status": WAITING,
                    "timeout_at": new.timeout_at,
                }
                for tag in new.tags
            ],
        )
    event_id = db.session.execute(
        _INSERT_EVENT,
        {
            "project_id": project_id,
            "token_pk": token.pk,
            "type": "waitpoint.created",
            "source": None,
            "created_at": now,
        },
    ).scalar_one()
    token_deliveries = outbox.enqueue([event_id])
    mail = 0
    if new.approvers:
        mail = approvers.insert_approvers(token.pk, project_id, new.approvers, now, new.reminders)
    if key_hash is not None:
        db.session.execute(
            _INSERT_IDEMPOTENCY_KEY,
            {
                "project_id": project_id,
                "key_hash": key_hash,
                "token_pk": token.pk,
                "expires_at": key_expires_at,
            },
        )
    return token, token_deliveries, mail


# The create's statements, built once (a statement built per call is walked for its
# cache key at every execution).
_INSERT_TOKEN = insert(TOKENS).returning(*TOKENS.c)
_INSERT_TAGS = insert(TokenTag.__table__)
_INSERT_IDEMPOTENCY_KEY = insert(IdempotencyKey.__table__)
_IDEMPOTENCY_KEY = select(IdempotencyKey.token_pk, IdempotencyKey.expires_at).where(
    IdempotencyKey.project_id == bindparam("project_id"),
    IdempotencyKey.key_hash == bindparam("key_hash"),
)


def complete_token(
    token_pk: int, output: str | None, record: CompletionRecord, now: datetime | None = None
) -> bool:
    """Complete a waiting token with ``output`` (JSON text). True if this call decided it.

    ``now`` is for tests that move time; by default the deadline is checked against
    the time of the write itself (``_clock``), not the time the request arrived.
    """
    return _finish(token_pk, {"status": COMPLETED, "output": output}, record, now)


CANCELLED = "WAITPOINT_CANCELLED"


def cancel_token(
    token_pk: int, reason: str | None, record: CompletionRecord, now: datetime | None = None
) -> bool:
    """Withdraw a waiting token: COMPLETED with the error output ``{"code":
    "WAITPOINT_CANCELLED", "message"}`` (``outputIsError`` true, as for a time-out, so that
    no caller takes it for a decision). ``record.source`` is ``cancel``. True if this call
    decided it."""
    message = f"Withdrawn: {reason}" if reason else "The request was withdrawn"
    output = to_json_text({"code": CANCELLED, "message": message})
    return complete_token(token_pk, output, replace(record, comment=reason), now)


def time_out_now(token_pk: int, record: CompletionRecord, now: datetime | None = None) -> bool:
    """An operator ends a waiting token as timed out, now. True if this call decided it."""
    return _finish(token_pk, {"status": TIMED_OUT}, record, now, move_deadline=True)


def _clock(now: datetime | None):
    """The time a write decides against: taken when the write happens, never before.

    Call it inside the write transaction. On SQLite that is after this writer's turn
    in the queue (``write_transaction``), so time spent queueing behind other writers
    counts. On PostgreSQL it is the database's own ``clock_timestamp()``, evaluated as
    the row is written (after any row lock was waited for), and one clock for every
    host. Tests pass ``now`` to move time.
    """
    if now is not None:
        return now
    if db.session.get_bind().dialect.name == "postgresql":
        return func.clock_timestamp()
    return utcnow()


def _finish(
    token_pk: int,
    values: dict,
    record: CompletionRecord,
    now: datetime | None,
    *,
    move_deadline: bool = False,
) -> bool:
    """The one transition: a conditional UPDATE on a still-waiting token, then its record.

    A token whose deadline has passed by the time of the write is not completed: this
    call times it out instead (as the sweep would), so that whoever is told
    ``TIMED_OUT`` afterwards is told what is stored, and nothing can complete it later.
    """
    write_transaction()
    finished, change = _finish_in_transaction(token_pk, values, record, _clock(now), move_deadline)
    db.session.commit()
    _after_commit(change)
    return finished


def _finish_in_transaction(
    token_pk: int, values: dict, record: CompletionRecord, clock, move_deadline: bool = False
) -> tuple[bool, Change]:
    """``_finish`` inside a write transaction the caller opened and commits."""
    on_db_clock = not isinstance(clock, datetime)
    statement = _finish_setting(tuple(values), move_deadline, on_db_clock)
    params = {"token_pk": token_pk, **{f"new_{name}": value for name, value in values.items()}}
    if not on_db_clock:
        params["now"] = clock
    finished = db.session.execute(statement, params).one_or_none()
    if finished is not None:
        db.session.execute(
            _INSERT_COMPLETION,
            {
                "token_pk": token_pk,
                "source": record.source,
                "approved": record.approved,
                "actor": record.actor,
                "comment": record.comment,
                "ip": record.ip,
                "user_agent": record.user_agent,
                "created_at": finished.finished_at,
            },
        )
        change = Change(values["status"], record.source, [finished])
        _record(change, moved_deadline=move_deadline)
    else:
        change = _time_out_overdue([token_pk], clock, source="request")
    return finished is not None, change


def _finish_statement(deadline_not_past):
    return (
        update(TOKENS)
        .where(
            TOKENS.c.pk == bindparam("token_pk"),
            TOKENS.c.status == WAITING,
            or_(TOKENS.c.timeout_at.is_(None), deadline_not_past),
        )
        .returning(*_CHANGED)
    )


# What a transition returns of each token it changed (``Change.tokens``).
_CHANGED = (TOKENS.c.pk, TOKENS.c.project_id, TOKENS.c.finished_at, TOKENS.c.required_approvals)

# Two shapes, built once: against a time given as a parameter, or the database's clock.
_FINISH = _finish_statement(TOKENS.c.timeout_at > bindparam("now"))
_FINISH_ON_DB_CLOCK = _finish_statement(TOKENS.c.timeout_at > func.clock_timestamp())


@lru_cache(maxsize=32)
def _finish_setting(columns: tuple[str, ...], move_deadline: bool, on_db_clock: bool):
    """The conditional UPDATE setting these columns (``new_<column>`` parameters) and the
    time of the write, built once per shape: a statement built at each call is walked for
    its cache key at each execution."""
    clock = func.clock_timestamp() if on_db_clock else bindparam("now")
    values = {name: bindparam(f"new_{name}") for name in columns}
    values["finished_at"] = clock
    if move_deadline:
        values["timeout_at"] = clock
    return (_FINISH_ON_DB_CLOCK if on_db_clock else _FINISH).values(values)


_INSERT_COMPLETION = insert(Completion.__table__)


def settle_overdue(tokens: list[StoredToken], now: datetime) -> list[StoredToken]:
    """The tokens as they stand once every overdue one among them has been timed out.

    Nobody is ever told ``TIMED_OUT`` before it is stored: a reader that finds a token
    past its deadline but not yet swept times it out first (the sweep's conditional
    UPDATE, through the same write path as completions), then reports what is stored.
    A completion already being written when the deadline passed wins that race, and
    the reader reports it. Most reads find nothing overdue and write nothing.
    """
    due = [token.pk for token in tokens if token.overdue(now)]
    if not due:
        return tokens
    write_transaction()
    change = _time_out_overdue(due, _clock(None), source="request")
    db.session.commit()
    _after_commit(change)
    fresh = stored.tokens_by_pks(due)
    return [fresh.get(token.pk, token) for token in tokens]


def settled(token: StoredToken, now: datetime) -> StoredToken:
    """``settle_overdue`` for one token."""
    return settle_overdue([token], now)[0]


def _time_out_overdue(token_pks, clock, source: str) -> Change:
    """Time out those of ``token_pks`` (a list or a subquery) still waiting past their
    deadline at ``clock``, as ``source`` (the sweep, or a request that found them due)."""
    expired = db.session.execute(
        update(TOKENS)
        .where(
            TOKENS.c.pk.in_(token_pks),
            TOKENS.c.status == WAITING,
            TOKENS.c.timeout_at <= clock,
        )
        .values(status=TIMED_OUT, finished_at=clock)
        .returning(*_CHANGED)
    ).all()
    change = Change(TIMED_OUT, source, expired)
    _record(change)
    return change


@dataclass
class Change:
    """Tokens one write moved to ``status``, as ``source`` (``api``, ``callback``, ``page``,
    ``dashboard``; ``sweep`` or ``request`` for time-outs): rows of (pk, project_id,
    finished_at, required_approvals); how many webhook deliveries their events enqueued,
    and how many emails (notes to approvers who had not answered)."""

    status: str
    source: str
    tokens: list
    deliveries: int = 0
    mail: int = 0

    @property
    def pks(self) -> list[int]:
        return [token.pk for token in self.tokens]


_EVENT_TYPES = {COMPLETED: "waitpoint.completed", TIMED_OUT: "waitpoint.timed_out"}
_INSERT_EVENT = insert(Event.__table__).returning(Event.id)
_EVENT_COLUMNS = ("project_id", "token_pk", "type", "source", "created_at")


class _EventsFromTokens:
    """``INSERT INTO events SELECT ... FROM tokens WHERE <condition>``: one event per token,
    stamped with the token's ``finished_at`` (the time of the write)."""

    def where(self, condition):
        rows = select(
            TOKENS.c.project_id,
            TOKENS.c.pk,
            bindparam("type", type_=String),
            bindparam("source", type_=String),
            TOKENS.c.finished_at,
        ).where(condition)
        return insert(Event.__table__).from_select(_EVENT_COLUMNS, rows).returning(Event.id)


_EVENTS_FROM_TOKENS = _EventsFromTokens()
# One token (a completion), built once; a batch (the sweep's) builds its own.
_EVENTS_FROM_ONE_TOKEN = _EVENTS_FROM_TOKENS.where(TOKENS.c.pk == bindparam("token_pk"))


def _record(change: Change, *, moved_deadline: bool = False) -> None:
    """What follows every decision, in its transaction: the copies in ``token_tags``, the
    news for other processes, and one event per token. Completions and time-outs (the
    sweep's, a request's, an operator's) all come through here."""
    if not change.tokens:
        return
    tag_values = {"status": change.status}
    if moved_deadline:  # "time out now": the deadline became the moment of the write
        tag_values["timeout_at"] = change.tokens[0].finished_at
    _copy_to_tags(change.pks, tag_values)
    _notify_other_processes(change.pks)
    # One set-based INSERT ... SELECT: a sweep batch of 1,000 is one statement, not 1,000.
    params = {"type": _EVENT_TYPES[change.status], "source": change.source}
    if len(change.pks) == 1:
        statement, params["token_pk"] = _EVENTS_FROM_ONE_TOKEN, change.pks[0]
    else:
        statement = _EVENTS_FROM_TOKENS.where(TOKENS.c.pk.in_(change.pks))
    event_ids = db.session.execute(statement, params).scalars().all()
    change.deliveries = outbox.enqueue(event_ids)
    with_approvers = [t.pk for t in change.tokens if t.required_approvals is not None]
    if with_approvers:
        change.mail = approvers.enqueue_closing_notes(with_approvers, change.tokens[0].finished_at)


def _after_commit(change: Change) -> None:
    """What follows every decision once committed: wake this process's waiters (and its
    webhook sender, if deliveries were enqueued), count."""
    if not change.tokens:
        return
    app = current_app._get_current_object()
    token_decided.send(app, token_pks=change.pks)
    if change.deliveries:
        outbox.deliveries_enqueued.send(app)
    if change.mail:
        approvers.mail_enqueued.send(app)
    if change.status == COMPLETED:
        for token in change.tokens:
            metrics.token_completed(token.project_id, change.source)
    else:
        by = {"sweep": "sweep", "request": "request"}.get(change.source, "operator")
        metrics.tokens_timed_out(Counter(t.project_id for t in change.tokens), by=by)


def decide_token(
    token_pk: int,
    approved: bool,
    comment: str,
    record: CompletionRecord,
    now: datetime | None = None,
    response: dict | None = None,
) -> bool:
    """Approve or reject: complete with ``{"approved", "comment", "approver"}``.

    ``record.actor`` is the approver's name (or None). True if this call decided it. An
    operator deciding a token with named approvers (the dashboard) overrides them; the
    output then also lists the ``approvals`` given so far.
    """
    decision: dict = {"approved": approved}
    if approved and response is not None:  # the response form's answers
        decision["response"] = response
    listed = approvers.of_token(token_pk)
    if listed:
        votes = approvers.Progress(len(listed), tuple(listed)).approvals
        decision["approvals"] = [vote.vote_json() for vote in votes]
    decision.update(comment=comment, approver=record.actor)
    output = to_json_text(decision)
    record = replace(record, approved=approved, comment=comment)
    return complete_token(token_pk, output, record, now)


@dataclass(frozen=True)
class VoteOutcome:
    """What became of a named approver's vote: recorded (or why not), and whether it
    decided the token."""

    recorded: bool
    decided: bool = False
    refused: str | None = None  # a reason to tell the approver, when it was refused


_LOCK_TOKEN = select(TOKENS.c.requested_by).where(TOKENS.c.pk == bindparam("pk")).with_for_update()
_APPROVERS = approvers.APPROVERS


def _vote_statement(deadline_not_past):
    still_open = (
        select(TOKENS.c.pk)
        .where(
            TOKENS.c.pk == bindparam("v_token_pk"),
            TOKENS.c.status == WAITING,
            or_(TOKENS.c.timeout_at.is_(None), deadline_not_past),
        )
        .exists()
    )
    return (
        update(_APPROVERS)
        .where(
            _APPROVERS.c.id == bindparam("v_approver_id"),
            _APPROVERS.c.decision.is_(None),
            still_open,
        )
        .returning(_APPROVERS.c.id)
    )


_VOTE = _vote_statement(TOKENS.c.timeout_at > bindparam("now"))
_VOTE_ON_DB_CLOCK = _vote_statement(TOKENS.c.timeout_at > func.clock_timestamp())


def vote(
    token_pk: int,
    approver_id: int,
    approve: bool,
    comment: str,
    record: CompletionRecord,
    now: datetime | None = None,
    response: dict | None = None,
) -> VoteOutcome:
    """A named approver approves or rejects (``domain.approvers``).

    The token's row is locked first (PostgreSQL; on SQLite the one writer holds the
    database), so votes on one token are counted one at a time: the vote that reaches the
    quorum, or the first rejection, completes the token through ``_finish``'s conditional
    UPDATE, exactly once. A vote is refused if this approver has voted, if the token is
    final or past its deadline (it is timed out then), and an approval by the person who
    requested it.
    """
    write_transaction()
    requested_by = db.session.execute(_LOCK_TOKEN, {"pk": token_pk}).scalar_one()
    listed = approvers.of_token(token_pk)
    me = next(a for a in listed if a.id == approver_id)
    if approve and me.is_requester_of(requested_by):
        db.session.commit()
        return VoteOutcome(False, refused="You requested this, so you cannot approve it.")
    clock = _clock(now)
    statement = _VOTE if isinstance(clock, datetime) else _VOTE_ON_DB_CLOCK
    values = {
        "decision": approvers.APPROVED if approve else approvers.REJECTED,
        "comment": comment,
        "decided_at": clock,
        "response_json": to_json_text(response) if approve and response is not None else None,
        "ip": record.ip,
        "user_agent": record.user_agent,
    }
    params = {"v_token_pk": token_pk, "v_approver_id": approver_id, "now": clock}
    if statement is _VOTE_ON_DB_CLOCK:
        del params["now"]
    recorded = db.session.execute(statement.values(**values), params).one_or_none()
    if recorded is None:  # voted already, or the token is final or overdue
        change = _time_out_overdue([token_pk], clock, source="request")
        db.session.commit()
        _after_commit(change)
        return VoteOutcome(False)
    token = stored.token_by_pk(token_pk)
    progress = approvers.progress_of(token)
    me = next(a for a in progress.approvers if a.id == approver_id)
    decided, change = False, None
    if me.rejected or len(progress.approvals) >= progress.required:
        output = approvers.decision_output(progress, me)
        deciding = replace(record, approved=approve, actor=me.email, comment=comment)
        decided, change = _finish_in_transaction(
            token_pk, {"status": COMPLETED, "output": output}, deciding, clock
        )
    db.session.commit()
    if change is not None:
        _after_commit(change)
    metrics.approver_voted(approve)
    return VoteOutcome(True, decided)


def to_json_text(value) -> str:
    """Compact JSON, as JSON.stringify writes it: the stored form of every output."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def expire_due(now: datetime | None = None, batch_size: int = 1000) -> int:
    """Store ``TIMED_OUT`` for every waiting token whose deadline has passed.

    Works in batches of ``batch_size``, each its own short transaction, and is safe
    to run in several processes at once (PostgreSQL: SKIP LOCKED; SQLite: one writer).
    Deadlines are checked against the clock of the write (``_clock``) unless a test
    passes ``now``. Returns how many tokens this call timed out.
    """
    total = 0
    while True:
        # Look before locking: most sweeps find nothing, and should not take the write lock.
        if not _anything_due(_clock(now)):
            db.session.commit()
            return total
        write_transaction()
        clock = _clock(now)
        due = (
            select(Token.pk)
            .where(Token.status == WAITING, Token.timeout_at <= clock)
            .order_by(Token.timeout_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        change = _time_out_overdue(due.scalar_subquery(), clock, source="sweep")
        db.session.commit()
        _after_commit(change)
        total += len(change.tokens)
        if len(change.tokens) < batch_size:
            return total


def _anything_due(now: datetime) -> bool:
    query = select(Token.pk).where(Token.status == WAITING, Token.timeout_at <= now).limit(1)
    return db.session.execute(query).first() is not None


def _notify_other_processes(token_pks: list[int]) -> None:
    """PostgreSQL NOTIFY inside the deciding transaction: sent if, and when, it commits."""
    if db.session.get_bind().dialect.name != "postgresql":
        return  # SQLite: other processes notice the commit through PRAGMA data_version
    for start in range(0, len(token_pks), _NOTIFY_CHUNK):
        payload = ",".join(map(str, token_pks[start : start + _NOTIFY_CHUNK]))
        db.session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": payload},
        )


def _copy_to_tags(token_pks: list[int], values: dict) -> None:
    """Keep the copies of status (and deadline) in ``token_tags`` in step with ``tokens``."""
    if len(token_pks) == 1:  # a completion: a statement built once per shape
        params = {f"new_{name}": value for name, value in values.items()}
        db.session.execute(_copy_one_to_tags(tuple(values)), {"pk": token_pks[0], **params})
        return
    tags = TokenTag.__table__
    db.session.execute(update(tags).where(tags.c.token_pk.in_(token_pks)).values(**values))


@lru_cache(maxsize=8)
def _copy_one_to_tags(columns: tuple[str, ...]):
    tags = TokenTag.__table__
    return (
        update(tags)
        .where(tags.c.token_pk == bindparam("pk"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )
