"""The mailer: sends what the mail outbox holds, and records how it went.

``send_due_mail`` is a plain function, like the sweep and the webhook sender: the
scheduler's job calls it in every server process (and at once when this process enqueued
mail), ``waitpoint deliver`` and the tests call it too. One pass:

1. **claim** due pending messages in id order, in a short write transaction, by setting
   ``claimed_until`` (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the one writer); a
   claim that expired (its mailer crashed) can be taken again;
2. **render** each from the token as it stands now, or skip it: a request or reminder
   once the token is final or its approver has answered, a "no action needed" note to
   someone who never got the request;
3. **send**, outside any transaction, over one SMTP connection (``WAITPOINT_SMTP_URL``),
   or into the local mailbox (the dashboard's Mail page reads the stored message);
4. **record** the outcome only if the claim is still this mailer's: sent, retried later
   on ``RETRY_DELAYS`` (with jitter), or failed (a permanent SMTP refusal, or the last
   retry). What was sent is kept: subject, text and HTML.

At least once: a mailer that dies between sending and recording leaves a claim that
expires, and the message is sent again.
"""

from __future__ import annotations

import logging
import random
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, make_msgid

from flask import current_app, render_template
from sqlalchemy import bindparam, select, update

from ..config import SmtpSettings
from ..domain import approvers, capability, stored
from ..domain.approvers import CLOSED, MAIL, REMINDER, REQUEST, StoredApprover
from ..domain.stored import StoredToken
from ..domain.timeutil import utcnow
from ..extensions import db
from ..models import UTCDateTime
from . import metrics
from .database import write_transaction

log = logging.getLogger(__name__)

# After the nth failed attempt the next one comes this much later (±10 %); after the
# last, the message has failed: 7 attempts over about 4 hours.
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (30, 120, 600, 1800, 3600, 7200))
JITTER = 0.1
# A closing note waits for its approver's request to be sent (or given up) first.
CLOSING_NOTE_WAIT = timedelta(seconds=30)
CANNOT_SEND = (
    "this server cannot send email: set WAITPOINT_SMTP_URL, or WAITPOINT_LOCAL_MAILBOX=on "
    "to keep mail in the dashboard's Mail page"
)
SUBJECTS = {
    REQUEST: "Approval requested: {title}",
    REMINDER: "Reminder: approval requested: {title}",
    CLOSED: "No action needed: {title}",
}


def can_send(config) -> bool:
    return config["WAITPOINT_SMTP_URL"] is not None or config["WAITPOINT_LOCAL_MAILBOX"]


def _claim_statement():
    free = (MAIL.c.claimed_until.is_(None)) | (
        MAIL.c.claimed_until <= bindparam("now", type_=UTCDateTime)
    )
    due = (
        select(MAIL.c.id)
        .where(
            MAIL.c.status == "pending",
            MAIL.c.next_attempt_at <= bindparam("now", type_=UTCDateTime),
            free,
        )
        .order_by(MAIL.c.id)
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(MAIL)
        .where(MAIL.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=bindparam("until", type_=UTCDateTime))
        .returning(
            MAIL.c.id,
            MAIL.c.token_pk,
            MAIL.c.approver_id,
            MAIL.c.kind,
            MAIL.c.to_email,
            MAIL.c.attempts,
        )
    )


_CLAIM = _claim_statement()
_RECORD = (
    update(MAIL)
    .where(
        MAIL.c.id == bindparam("m_id"),
        MAIL.c.claimed_until == bindparam("m_claim", type_=UTCDateTime),
    )
    .values(
        status=bindparam("m_status"),
        attempts=bindparam("m_attempts"),
        next_attempt_at=bindparam("m_next", type_=UTCDateTime),
        claimed_until=None,
        last_attempt_at=bindparam("m_attempted", type_=UTCDateTime),
        last_error=bindparam("m_error"),
        transport=bindparam("m_transport"),
        subject=bindparam("m_subject"),
        body_text=bindparam("m_text"),
        body_html=bindparam("m_html"),
        sent_at=bindparam("m_sent", type_=UTCDateTime),
    )
)


@dataclass
class _Job:
    """One claimed message: what to send, and what came of it."""

    id: int
    token_pk: int
    approver_id: int
    kind: str
    to_email: str
    attempts: int
    subject: str | None = None
    to_name: str | None = None
    text: str | None = None
    html: str | None = None
    # pending (not tried yet), sent, retry, failed, skipped, postponed
    result: str = "pending"
    error: str | None = None
    extra: dict = field(default_factory=dict)


def send_due_mail(now: datetime | None = None, batch: int | None = None) -> int:
    """Send every due message, in batches; how many this call sent or tried.

    Needs an app context. ``now`` is for tests that move time (reminders): due-ness and
    the retry schedule follow it.
    """
    config = current_app.config
    if not can_send(config):
        return 0  # nowhere to send: it stays queued until SMTP or the mailbox is set up
    batch = batch or config["WAITPOINT_MAIL_BATCH"]
    lease = timedelta(seconds=batch * 2 * config["WAITPOINT_SMTP_TIMEOUT"] + 60)
    total = 0
    while True:
        started = now or utcnow()
        claim = started + lease
        jobs = _claim(started, claim, batch)
        if not jobs:
            return total
        _prepare(jobs, started)
        _send(jobs, config)
        _record(jobs, claim, now)
        total += sum(1 for job in jobs if job.result in ("sent", "retry", "failed"))
        if len(jobs) < batch:
            return total


def _claim(now: datetime, until: datetime, batch: int) -> list[_Job]:
    # Look before locking: most passes find nothing, and should not take the write lock.
    due = select(MAIL.c.id).where(MAIL.c.status == "pending", MAIL.c.next_attempt_at <= now)
    if db.session.execute(due.limit(1)).first() is None:
        db.session.commit()
        return []
    write_transaction()
    rows = db.session.execute(_CLAIM, {"now": now, "until": until, "batch": batch}).all()
    db.session.commit()
    return [
        _Job(row.id, row.token_pk, row.approver_id, row.kind, row.to_email, row.attempts)
        for row in sorted(rows, key=lambda row: row.id)
    ]


def _prepare(jobs: list[_Job], now: datetime) -> None:
    """Render each message, or mark it skipped or postponed (one read transaction)."""
    token_pks = {job.token_pk for job in jobs}
    tokens = stored.tokens_by_pks(list(token_pks))
    listed = approvers.of_tokens(token_pks)
    closing = [job.approver_id for job in jobs if job.kind == CLOSED]
    requests = _request_states(closing) if closing else {}
    claimed = {job.id for job in jobs}
    capability.warn_without_public_url()
    base_url = capability.public_base_url()
    # Closing notes last: they depend on what becomes of the requests of this batch.
    for job in sorted(jobs, key=lambda job: job.kind == CLOSED):
        token = tokens.get(job.token_pk)
        approver = next((a for a in listed.get(job.token_pk, ()) if a.id == job.approver_id), None)
        if token is None or approver is None:
            job.result = "skipped"
            continue
        if job.kind == CLOSED:  # a note waits for its request's outcome
            states = _in_this_batch(jobs, job.approver_id)
            states |= {
                status
                for message_id, status in requests.get(job.approver_id, {}).items()
                if message_id not in claimed
            }
            if "sent" not in states:
                job.result = "postponed" if "pending" in states else "skipped"
                continue
        elif not token.waiting or token.overdue(now) or approver.decision is not None:
            job.result = "skipped"  # nothing to ask any more
            continue
        _render(job, token, approver, listed[job.token_pk], base_url, now)
    db.session.commit()


def _in_this_batch(jobs: list[_Job], approver_id: int) -> set[str]:
    """What the requests to this approver in this batch will be: a request about to be
    sent counts as pending (its note waits for the next pass, after its outcome)."""
    return {
        "skipped" if job.result == "skipped" else "pending"
        for job in jobs
        if job.kind == REQUEST and job.approver_id == approver_id
    }


def _request_states(approver_ids: list[int]) -> dict[int, dict[int, str]]:
    """The requests to these approvers: ``{approver_id: {message_id: status}}``."""
    rows = db.session.execute(
        select(MAIL.c.approver_id, MAIL.c.id, MAIL.c.status).where(
            MAIL.c.approver_id.in_(approver_ids), MAIL.c.kind == REQUEST
        )
    )
    states: dict[int, dict[int, str]] = {}
    for row in rows:
        states.setdefault(row.approver_id, {})[row.id] = row.status
    return states


def _render(
    job: _Job,
    token: StoredToken,
    approver: StoredApprover,
    everyone: list[StoredApprover],
    base_url: str,
    now: datetime,
) -> None:
    title = token.title or "a request"
    context = {
        "token": token,
        "approver": approver,
        "progress": approvers.Progress(token.required_approvals or 1, tuple(everyone)),
        "link": base_url + capability.approver_path(token.id, approver.position),
        "kind": job.kind,
        "now": now,
    }
    template = "mail/closed" if job.kind == CLOSED else "mail/request"  # reminders too
    job.text = render_template(f"{template}.txt", **context)
    job.html = render_template(f"{template}.html", **context)
    job.subject = SUBJECTS[job.kind].format(title=_one_line(title))
    job.to_name = approver.name


def _message(job: _Job, sender: str) -> MIMEMultipart:
    """The MIME message (text and HTML alternatives), built only to go out over SMTP (the
    mailbox keeps the parts as they are). The ``compat32`` classes: a tenth of the CPU
    of ``EmailMessage``'s header parsing, which a burst of mail would take from requests."""
    message = MIMEMultipart("alternative")
    message["Subject"] = Header(job.subject, "utf-8")
    message["From"] = sender
    message["To"] = formataddr((job.to_name or "", job.to_email), charset="utf-8")
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    # Replies and autoresponders: this is a notification, not a conversation.
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(job.text, "plain", "utf-8"))
    message.attach(MIMEText(job.html, "html", "utf-8"))
    return message


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 150 else flat[:149] + "…"


def _send(jobs: list[_Job], config) -> None:
    ready = [job for job in jobs if job.subject is not None]
    if not ready:
        return
    settings: SmtpSettings | None = config["WAITPOINT_SMTP_URL"]
    if settings is None:  # the local mailbox: the stored message is the delivery
        for job in ready:
            job.result, job.extra["transport"] = "sent", "mailbox"
        return
    timeout = config["WAITPOINT_SMTP_TIMEOUT"]
    sender = config["WAITPOINT_MAIL_FROM"]
    connection = None
    for job in ready:
        try:
            if connection is None:
                connection = _connect(settings, timeout)
            connection.send_message(_message(job, sender), to_addrs=[job.to_email])
            job.result, job.extra["transport"] = "sent", "smtp"
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
            job.result, job.error = _refused(exc)
            if isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code < 500:
                connection = _close(connection)
        except (OSError, smtplib.SMTPException) as exc:
            job.result, job.error = "retry", _describe(exc)
            connection = _close(connection)
    _close(connection)


def _connect(settings: SmtpSettings, timeout: float) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if settings.tls:
        connection = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=timeout, context=context
        )
    else:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    try:
        connection.ehlo()
        if not settings.tls and connection.has_extn("starttls"):
            connection.starttls(context=context)
            connection.ehlo()
        elif not settings.tls and settings.username:
            raise smtplib.SMTPNotSupportedError(
                "the server does not offer STARTTLS: the password is not sent in clear "
                "(use smtps://, or a server with STARTTLS)"
            )
        if settings.username:
            connection.login(settings.username, settings.password or "")
    except BaseException:
        _close(connection)
        raise
    return connection


def _close(connection: smtplib.SMTP | None) -> None:
    if connection is None:
        return None
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()
    return None


def _refused(exc: smtplib.SMTPException) -> tuple[str, str]:
    """A 5xx refusal of this message is final; a 4xx one is tried again later."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
    else:
        code, text = exc.smtp_code, exc.smtp_error
    message = f"SMTP {code}: {_decoded(text)}"
    return ("failed" if code >= 500 else "retry"), message


def _decoded(text) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}: {_decoded(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _record(jobs: list[_Job], claim: datetime, now: datetime | None) -> None:
    outcomes = []
    for job in jobs:
        at = now or utcnow()
        outcome = {
            "m_id": job.id,
            "m_claim": claim,
            "m_attempts": job.attempts,
            "m_next": at,
            "m_attempted": None,
            "m_error": None,
            "m_transport": None,
            "m_subject": job.subject,
            "m_text": job.text,
            "m_html": job.html,
            "m_sent": None,
        }
        if job.result in ("skipped", "postponed"):
            outcome["m_status"] = "skipped" if job.result == "skipped" else "pending"
            if job.result == "postponed":
                outcome["m_next"] = at + CLOSING_NOTE_WAIT
            outcomes.append(outcome)
            continue
        number = job.attempts + 1
        outcome.update(m_attempts=number, m_attempted=at, m_error=job.error)
        if job.result == "sent":
            outcome.update(m_status="sent", m_sent=at, m_transport=job.extra["transport"])
        elif job.result == "retry" and number <= len(RETRY_DELAYS):
            delay = RETRY_DELAYS[number - 1] * random.uniform(1 - JITTER, 1 + JITTER)
            outcome.update(m_status="pending", m_next=at + delay)
        else:
            outcome["m_status"] = "failed"
            log.warning(
                "email %d (%s) to approver %d failed for good after %d attempt(s): %s",
                job.id,
                job.kind,
                job.approver_id,
                number,
                job.error,
            )
        result = {"sent": "sent", "pending": "retry"}.get(outcome["m_status"], "failed")
        metrics.mail_attempted(job.kind, result)
        outcomes.append(outcome)
    write_transaction()
    db.session.execute(_RECORD, outcomes)
    db.session.commit()
