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

from blinker import Namespace
from sqlalchemy import String, and_, bindparam, insert, literal, select

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
    ids = db.session.execute(
        _INSERT_APPROVERS,
        [
            {
                "token_pk": token_pk,
                "project_id": project_id,
                "position": position,
                "email": approver.email,
                "name": approver.name,
            }
            for position, approver in enumerate(approvers, start=1)
        ],
    ).all()
    due = [(REQUEST, created_at)] + [(REMINDER, created_at + after) for after in reminders]
    messages = [
        _message(project_id, token_pk, row.id, row.email, kind, at, created_at)
        for kind, at in due
        for row in ids
    ]
    db.session.execute(insert(MAIL), messages)
    return len(messages)


# One statement for all of a token's approvers (insertmanyvalues), their ids in order.
_INSERT_APPROVERS = insert(APPROVERS).returning(
    APPROVERS.c.id, APPROVERS.c.email, sort_by_parameter_order=True
)


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
        and_(
            APPROVERS.c.token_pk.in_(bindparam("pks", expanding=True)),
            APPROVERS.c.decision.is_(None),
        )
    )
    columns = (
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
    return insert(MAIL).from_select(columns, rows)


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
    output: dict = {
        "approved": deciding.approved,
        "approvals": [vote.vote_json() for vote in progress.approvals],
    }
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
