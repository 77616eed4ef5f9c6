"""Named approvers (a Waitpoint extension): who they are, their votes, and their mail.

A token created with ``approvers`` is decided by them, through personal links
(``capability.approver_path``): it completes as approved once ``required_approvals``
distinct approvers have approved, and as rejected as soon as one rejects. Each
approver's row in ``token_approvers`` is their vote: a conditional UPDATE on
``decision IS NULL`` records it at most once. Counting the votes and deciding the token
happen in the vote's transaction, with the token locked (``lifecycle.vote``), so the
vote that reaches the quorum decides it exactly once however many arrive together.

Mail to approvers is an outbox (``mail_messages``) written in the same transactions:
the request at create, reminders due later, a "no action needed" note once the token
is final; ``infra.mailer`` sends it in the background.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from blinker import Namespace
from sqlalchemy import String, bindparam, insert, literal, select, text, true, union_all

from ..extensions import db
from ..models import APPROVED, REJECTED, MailMessage, TokenApprover, UTCDateTime
from .timeutil import isoformat

APPROVERS = TokenApprover.__table__
MAIL = MailMessage.__table__

REQUEST = "request"
REMINDER = "reminder"
CLOSED = "closed"

# Sent after a commit that enqueued mail: wakes this process's mailer at once.
mail_enqueued = Namespace().signal("mail-enqueued")


@dataclass(frozen=True)
class NewApprover:
    email: str  # checked by ``email-validator``, in lower case, unique within the token
    name: str | None = None


@dataclass(frozen=True, slots=True)
class StoredApprover:
    id: int
    token_pk: int
    position: int  # 1, 2, ...: what the personal link names
    email: str
    name: str | None
    decision: str | None  # approved | rejected | None (not yet)
    comment: str | None
    decided_at: datetime | None
    response_json: str | None = None  # what they filled in, with an approval

    @property
    def response(self) -> dict | None:
        return json.loads(self.response_json) if self.response_json is not None else None

    @property
    def label(self) -> str:
        """``Ada <ada@example.com>``, or the address alone."""
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def short_name(self) -> str:
        return self.name or self.email

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED

    @property
    def rejected(self) -> bool:
        return self.decision == REJECTED

    def is_requester_of(self, requested_by: str | None) -> bool:
        return self.email == requested_by

    def vote_json(self) -> dict:
        """One vote in a decision's output (``approvals``)."""
        vote: dict = {"approver": self.email}
        if self.name:
            vote["name"] = self.name
        if self.response_json is not None:
            vote["response"] = self.response
        vote["comment"] = self.comment or ""
        vote["decidedAt"] = isoformat(self.decided_at)
        return vote

    def wire_json(self) -> dict:
        """The approver as the retrieve object lists them."""
        item: dict = {"email": self.email}
        if self.name:
            item["name"] = self.name
        item["decision"] = self.decision
        if self.decided_at is not None:
            item["decidedAt"] = isoformat(self.decided_at)
            item["comment"] = self.comment or ""
        if self.response_json is not None:
            item["response"] = self.response
        return item


@dataclass(frozen=True)
class Progress:
    """Where a token's vote stands: ``approvals`` of ``required``, and who is left."""

    required: int
    approvers: tuple[StoredApprover, ...]

    @property
    def approvals(self) -> list[StoredApprover]:
        voted = [a for a in self.approvers if a.approved]
        return sorted(voted, key=lambda a: (a.decided_at, a.position))

    @property
    def rejection(self) -> StoredApprover | None:
        return next((a for a in self.approvers if a.rejected), None)

    @property
    def pending(self) -> list[StoredApprover]:
        return [a for a in self.approvers if a.decision is None]

    @property
    def short(self) -> str:
        """``1/2``: the board's compact form."""
        return f"{len(self.approvals)}/{self.required}"


def insert_approvers(
    token_pk: int,
    project_id: int,
    approvers: Sequence[NewApprover],
    created_at: datetime,
    reminders: Sequence[timedelta],
) -> int:
    """The approvers of a new token, and their mail: a request each, due now, and a
    reminder each per entry of ``reminders`` (sent only to those who have not answered
    by then). How many messages were enqueued."""
    rows = [
        {
            "token_pk": token_pk,
            "project_id": project_id,
            "position": position,
            "email": approver.email,
            "name": approver.name,
        }
        for position, approver in enumerate(approvers, start=1)
    ]
    dues = {f"due_{i}": created_at + after for i, after in enumerate(reminders, start=1)}
    params = {"token_pk": token_pk, "due_0": created_at, "now": created_at, **dues}
    if db.session.get_bind().dialect.name == "postgresql":
        # One round trip instead of two: arrays in, one fixed statement for any count.
        due_times = [created_at] + [created_at + after for after in reminders]
        kinds = [REQUEST] + [REMINDER] * len(reminders)
        db.session.execute(
            _APPROVERS_AND_MAIL_PG,
            {
                "token_pk": token_pk,
                "project_id": project_id,
                "positions": [row["position"] for row in rows],
                "emails": [row["email"] for row in rows],
                "names": [row["name"] for row in rows],
                "kinds": kinds,
                "dues": due_times,
                "now": created_at,
            },
        )
    else:
        db.session.execute(_INSERT_APPROVERS, rows)
        db.session.execute(_mail_for_new_approvers(len(reminders)), params)
    return len(approvers) * (1 + len(reminders))


_INSERT_APPROVERS = insert(APPROVERS)
_MAIL_COLUMNS = (
    "project_id",
    "token_pk",
    "approver_id",
    "kind",
    "to_email",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


@lru_cache(maxsize=8)
def _mail_for_new_approvers(reminders: int):
    """``INSERT INTO mail_messages SELECT``: a request (due ``:due_0``) and ``reminders``
    reminders (due ``:due_1``...) for each approver of ``:token_pk``; one statement,
    built once per number of reminders."""
    return _mail_for(APPROVERS, reminders)


# PostgreSQL: the approvers' INSERT ... RETURNING feeds the mail's INSERT, with the rows
# as arrays (one statement for any number of approvers and reminders).
_APPROVERS_AND_MAIL_PG = text(
    """
    WITH new AS (
        INSERT INTO token_approvers (token_pk, project_id, position, email, name)
        SELECT :token_pk, :project_id, u.position, u.email, u.name
        FROM unnest(CAST(:positions AS integer[]), CAST(:emails AS text[]),
                    CAST(:names AS text[])) AS u(position, email, name)
        RETURNING id, email, position
    )
    INSERT INTO mail_messages (project_id, token_pk, approver_id, kind, to_email, status,
                               attempts, next_attempt_at, created_at)
    SELECT :project_id, :token_pk, new.id, d.kind, new.email, 'pending', 0, d.due, :now
    FROM new CROSS JOIN unnest(CAST(:kinds AS text[]), CAST(:dues AS timestamptz[]))
         AS d(kind, due)
    ORDER BY d.due, new.position
    """
)


def _mail_for(approvers, reminders: int):
    """``_mail_for_new_approvers`` from ``approvers`` (a table or a subquery)."""
    dues = [select(literal(REQUEST, String).label("kind"), _due(0).label("due"))]
    dues += [select(literal(REMINDER, String), _due(i)) for i in range(1, reminders + 1)]
    due = (union_all(*dues) if len(dues) > 1 else dues[0]).subquery()
    columns = approvers.c
    rows = (
        select(
            columns.project_id,
            columns.token_pk,
            columns.id,
            due.c.kind,
            columns.email,
            literal("pending", String),
            literal(0),
            due.c.due,
            bindparam("now", type_=UTCDateTime),
        )
        .select_from(approvers.join(due, true()))  # every approver, every due time
        .where(columns.token_pk == bindparam("token_pk"))
        .order_by(due.c.due, columns.position)
    )
    return insert(MAIL).from_select(_MAIL_COLUMNS, rows)


def _due(i: int):
    return bindparam(f"due_{i}", type_=UTCDateTime)


def _message(project_id, token_pk, approver_id, email, kind, due_at, now) -> dict:
    return {
        "project_id": project_id,
        "token_pk": token_pk,
        "approver_id": approver_id,
        "kind": kind,
        "to_email": email,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": due_at,
        "created_at": now,
    }


def enqueue_resend(token_pk: int, approver: StoredApprover, project_id: int, now) -> None:
    """The request again (an operator's "resend link"), due now. In the caller's
    transaction."""
    db.session.execute(
        insert(MAIL),
        [_message(project_id, token_pk, approver.id, approver.email, REQUEST, now, now)],
    )


def _closing_notes():
    """One "no action needed" note per approver who has not voted, of the given tokens,
    due at the moment the token became final (``:at``)."""
    rows = select(
        APPROVERS.c.project_id,
        APPROVERS.c.token_pk,
        APPROVERS.c.id,
        literal(CLOSED, String),
        APPROVERS.c.email,
        literal("pending", String),
        literal(0),
        bindparam("at", type_=UTCDateTime),
        bindparam("at", type_=UTCDateTime),
    ).where(
        APPROVERS.c.token_pk.in_(bindparam("pks", expanding=True)),
        APPROVERS.c.decision.is_(None),
    )
    return insert(MAIL).from_select(_MAIL_COLUMNS, rows)


_CLOSING_NOTES = _closing_notes()


def enqueue_closing_notes(token_pks: list[int], at: datetime) -> int:
    """The notes to the approvers who did not answer, of tokens that just became final."""
    if not token_pks:
        return 0
    return db.session.execute(_CLOSING_NOTES, {"pks": token_pks, "at": at}).rowcount


_OF_TOKENS = (
    select(APPROVERS)
    .where(APPROVERS.c.token_pk.in_(bindparam("pks", expanding=True)))
    .order_by(APPROVERS.c.token_pk, APPROVERS.c.position)
)


def _approver(row) -> StoredApprover:
    return StoredApprover(
        id=row.id,
        token_pk=row.token_pk,
        position=row.position,
        email=row.email,
        name=row.name,
        decision=row.decision,
        comment=row.comment,
        decided_at=row.decided_at,
        response_json=row.response_json,
    )


def of_tokens(token_pks: Iterable[int]) -> dict[int, list[StoredApprover]]:
    pks = list(token_pks)
    found: dict[int, list[StoredApprover]] = {}
    if pks:
        for row in db.session.execute(_OF_TOKENS, {"pks": pks}):
            found.setdefault(row.token_pk, []).append(_approver(row))
    return found


def of_token(token_pk: int) -> list[StoredApprover]:
    return of_tokens([token_pk]).get(token_pk, [])


def progress_of(token, approvers: Sequence[StoredApprover] | None = None) -> Progress | None:
    """The vote of a token with named approvers (None for any other token)."""
    if token.required_approvals is None:
        return None
    listed = of_token(token.pk) if approvers is None else approvers
    return Progress(token.required_approvals, tuple(listed))


def progress_of_tokens(tokens) -> dict[int, Progress]:
    """Progress of each token that has approvers, in one query (the board)."""
    with_approvers = [t for t in tokens if t.required_approvals is not None]
    listed = of_tokens(t.pk for t in with_approvers)
    return {
        t.pk: Progress(t.required_approvals, tuple(listed.get(t.pk, ()))) for t in with_approvers
    }


def decision_output(progress: Progress, deciding: StoredApprover) -> str:
    """The output of a token the approvers decided: ``{"approved", "approvals",
    "rejectedBy"?, "comment", "approver"}`` (compact JSON, as every output is stored)."""
    output: dict = {"approved": deciding.approved}
    if deciding.response_json is not None:  # the deciding approval's answers
        output["response"] = deciding.response
    output["approvals"] = [vote.vote_json() for vote in progress.approvals]
    if deciding.rejected:
        output["rejectedBy"] = deciding.email
    output["comment"] = deciding.comment or ""
    output["approver"] = deciding.email
    return json.dumps(output, separators=(",", ":"), ensure_ascii=False)


def waiting_on(project_id: int, email: str):
    """A condition on ``tokens``: an approver with this address has not voted yet."""
    from ..models import Token

    return Token.pk.in_(
        select(APPROVERS.c.token_pk).where(
            APPROVERS.c.project_id == project_id,
            APPROVERS.c.email == email.lower(),
            APPROVERS.c.decision.is_(None),
        )
    )
