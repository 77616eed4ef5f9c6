"""Named approvers on the dashboard: who was asked and reminded, what the mail outbox
holds for a token or a project, one message as its approver got it, and the operator's
"resend link".

Lists read the outbox's bookkeeping columns only (its ``(token_pk, id)`` and
``(project_id, id)`` indexes); a message's text and HTML are read for the one message
shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..domain import approvers, capability, stored
from ..domain.approvers import APPROVERS, MAIL, REMINDER, REQUEST, Progress, StoredApprover
from ..domain.stored import ID_PREFIX, TOKENS, StoredToken
from ..extensions import db
from ..infra.database import write_transaction

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Mail:
    """One message of the outbox, as the dashboard lists it."""

    id: int
    token_pk: int
    token_id: str  # waitpoint_...
    approver_id: int
    kind: str  # request | reminder | closed
    to_email: str
    status: str  # pending | sent | skipped | failed
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None
    transport: str | None  # smtp | mailbox, once sent
    subject: str | None  # None until the mailer rendered it
    created_at: datetime
    sent_at: datetime | None

    @property
    def token_short(self) -> str:
        """The start of the token's id, as the board shows it."""
        return self.token_id.removeprefix(ID_PREFIX)[:8]

    @property
    def retrying(self) -> bool:
        """Tried, not sent, and due again: an SMTP server that refused or was away."""
        return self.status == "pending" and self.attempts > 0

    @property
    def failing(self) -> bool:
        return self.retrying or self.status == "failed"


_LISTED = select(
    MAIL.c.id,
    MAIL.c.token_pk,
    TOKENS.c.public_id,
    MAIL.c.approver_id,
    MAIL.c.kind,
    MAIL.c.to_email,
    MAIL.c.status,
    MAIL.c.attempts,
    MAIL.c.next_attempt_at,
    MAIL.c.last_attempt_at,
    MAIL.c.last_error,
    MAIL.c.transport,
    MAIL.c.subject,
    MAIL.c.created_at,
    MAIL.c.sent_at,
).join_from(MAIL, TOKENS, TOKENS.c.pk == MAIL.c.token_pk)


def _mail(row) -> Mail:
    values = dict(row._mapping)
    values["token_id"] = ID_PREFIX + values.pop("public_id")
    return Mail(**{name: values[name] for name in Mail.__slots__})


@dataclass(frozen=True)
class ApproverState:
    """An approver, their vote, and what their mail did."""

    approver: StoredApprover
    messages: tuple[Mail, ...]  # theirs, newest first

    def _sent(self, kind: str) -> datetime | None:
        return next((m.sent_at for m in self.messages if m.kind == kind and m.sent_at), None)

    @property
    def notified_at(self) -> datetime | None:
        """When their request (the latest, if it was resent) was sent."""
        return self._sent(REQUEST)

    @property
    def reminded_at(self) -> datetime | None:
        return self._sent(REMINDER)

    @property
    def queued(self) -> Mail | None:
        """A request not tried yet: the first, or an operator's resend."""
        return next((m for m in self.messages if m.kind == REQUEST and _untried(m)), None)

    @property
    def next_reminder(self) -> Mail | None:
        due = [m for m in self.messages if m.kind == REMINDER and _untried(m)]
        return min(due, key=lambda m: m.next_attempt_at, default=None)

    @property
    def trouble(self) -> Mail | None:
        """Their request or reminder tried last, if it is not getting through."""
        tried = [m for m in self.messages if m.kind != "closed" and m.last_attempt_at]
        latest = max(tried, key=lambda m: (m.last_attempt_at, m.id), default=None)
        return latest if latest is not None and latest.failing else None


def _untried(message: Mail) -> bool:
    return message.status == "pending" and message.attempts == 0


@dataclass(frozen=True)
class TokenMail:
    """The detail page's Approvers and Mail sections."""

    progress: Progress
    approvers: list[ApproverState]
    messages: list[Mail]  # newest first


def of_token(token: StoredToken) -> TokenMail | None:
    """None for a token without named approvers (it has no mail)."""
    progress = approvers.progress_of(token)
    if progress is None:
        return None
    query = _LISTED.where(MAIL.c.token_pk == token.pk).order_by(MAIL.c.id.desc())
    messages = [_mail(row) for row in db.session.execute(query)]
    states = [
        ApproverState(a, tuple(m for m in messages if m.approver_id == a.id))
        for a in progress.approvers
    ]
    return TokenMail(progress, states, messages)


@dataclass
class MailPage:
    messages: list[Mail]
    older: int | None  # the id to go on after, if there are older messages


def project_mail(project_id: int, after: int | None = None, size: int = PAGE_SIZE) -> MailPage:
    """A project's messages, newest first, ``size`` at a time (older than id ``after``)."""
    query = _LISTED.where(MAIL.c.project_id == project_id)
    if after is not None:
        query = query.where(MAIL.c.id < after)
    rows = db.session.execute(query.order_by(MAIL.c.id.desc()).limit(size + 1)).all()
    messages = [_mail(row) for row in rows[:size]]
    return MailPage(messages, messages[-1].id if len(rows) > size else None)


@dataclass(frozen=True)
class Message:
    """One message as its approver got it: what was sent, and their personal link."""

    mail: Mail
    approver: str  # ``Ada <ada@example.com>``
    text: str | None  # None until the mailer rendered it (and for a skipped message)
    has_html: bool
    link: str | None  # the approver's personal link, for a request or a reminder


def message(project_id: int, message_id: int) -> Message | None:
    """None alike for another project's message and one that does not exist."""
    query = _LISTED.add_columns(
        MAIL.c.body_text,
        MAIL.c.body_html.is_not(None).label("has_html"),
        APPROVERS.c.position,
        APPROVERS.c.email,
        APPROVERS.c.name,
    ).join(APPROVERS, APPROVERS.c.id == MAIL.c.approver_id)
    row = db.session.execute(
        query.where(MAIL.c.id == message_id, MAIL.c.project_id == project_id)
    ).one_or_none()
    if row is None:
        return None
    mail = _mail(row)
    asks = mail.kind in (REQUEST, REMINDER)
    return Message(
        mail=mail,
        approver=f"{row.name} <{row.email}>" if row.name else row.email,
        text=row.body_text,
        has_html=bool(row.has_html),
        link=capability.approver_url(mail.token_id, row.position) if asks else None,
    )


def message_html(project_id: int, message_id: int) -> str | None:
    return db.session.execute(
        select(MAIL.c.body_html).where(MAIL.c.id == message_id, MAIL.c.project_id == project_id)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Resent:
    approver: StoredApprover | None  # None: the token has no approver at that position
    queued: bool  # False: nothing to ask any more (they answered, or the token is final)


def resend_request(token_pk: int, position: int, now: datetime) -> Resent:
    """An operator's "resend link": the approver's request again, due now, if they still
    have something to answer. The mailer wakes once it is committed."""
    write_transaction()
    token = stored.token_by_pk(token_pk)
    approver = next((a for a in approvers.of_token(token_pk) if a.position == position), None)
    queued = (
        approver is not None
        and approver.decision is None
        and token.waiting
        and not token.overdue(now)
    )
    if queued:
        approvers.enqueue_resend(token_pk, approver, token.project_id, now)
    db.session.commit()
    if queued:
        approvers.mail_enqueued.send(current_app._get_current_object())
    return Resent(approver, queued)
