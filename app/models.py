"""Database tables (SQLAlchemy 2.0 declarative style).

Tokens have an integer surrogate key ``pk`` that orders them newest-last and is
what cursors and joins use; the public id (``waitpoint_<public_id>``) is random.
Tags live in their own table with the token's status and deadline copied next to
them, so that "status + tag, newest first" is a range scan of one index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .domain import limits
from .domain.timeutil import as_utc
from .extensions import db

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigPK = BigInteger().with_variant(Integer(), "sqlite")

WAITING = "WAITING"
COMPLETED = "COMPLETED"
TIMED_OUT = "TIMED_OUT"
STATUSES = (WAITING, COMPLETED, TIMED_OUT)


class UTCDateTime(TypeDecorator):
    """``timestamptz`` on PostgreSQL; naive UTC text on SQLite; aware UTC in Python."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else as_utc(value)


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="project")


class User(db.Model):
    """An operator who logs in to the dashboard; sees only their projects."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    projects: Mapped[list[Project]] = relationship(
        secondary="memberships", order_by="Project.name", lazy="selectin"
    )


class Membership(db.Model):
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )


class LoginThrottle(db.Model):
    """Failed logins per account and address, per address and per account, in fixed
    windows (shared by all processes); see ``accounts.log_in``."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)


class RateLimitCounter(db.Model):
    """A fixed-window request counter of the rate limits (``ratelimit_storage``).

    UNLOGGED on PostgreSQL (migration 0005). On SQLite the counters live in a file of
    their own beside the database, with the same table, and this one stays empty.
    """

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Double)  # seconds since the epoch


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # The first characters of the key, shown in listings so a key can be recognised.
    prefix: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the whole key (hex). The key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    project: Mapped[Project] = relationship(back_populates="api_keys")


class Token(db.Model):
    __tablename__ = "tokens"

    pk: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=WAITING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    timeout_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the final status was stored (for a sweep: the sweep's time, not the deadline).
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    idempotency_key_hash: Mapped[str | None] = mapped_column(String(64))
    idempotency_key_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The tags in the order given (JSON array text); ``token_tags`` is for searching.
    tags_json: Mapped[str] = mapped_column(Text, default="[]")
    # The completion's output serialized as JSON text, exactly as returned on the wire.
    output: Mapped[str | None] = mapped_column(Text)
    # What the approver is asked (all optional): shown on the approval page.
    title: Mapped[str | None] = mapped_column(String(limits.TITLE_MAX))
    description: Mapped[str | None] = mapped_column(Text)
    # A flat JSON object of at most 50 string/number/bool values, as JSON text.
    details_json: Mapped[str | None] = mapped_column(Text)
    # The token's own one-off webhook endpoint (a Waitpoint extension), and its secret.
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(String(100))
    # Named approvers (``token_approvers``): how many must approve; None without them.
    required_approvals: Mapped[int | None] = mapped_column(Integer)
    # Who asked (an email): shown to the approvers; cannot approve their own request.
    requested_by: Mapped[str | None] = mapped_column(String(limits.EMAIL_MAX))
    # A response form (``domain.response_form``): its JSON Schema as JSON text; the buttons'
    # labels; and the output of a time-out, if not the WAITPOINT_TIMEOUT error.
    form_json: Mapped[str | None] = mapped_column(Text)
    approve_label: Mapped[str | None] = mapped_column(String(limits.BUTTON_LABEL_MAX))
    reject_label: Mapped[str | None] = mapped_column(String(limits.BUTTON_LABEL_MAX))
    timeout_output: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_tokens_project_status_pk", "project_id", "status", "pk"),
        Index("ix_tokens_project_idempotency", "project_id", "idempotency_key_hash"),
        # The sweep's work queue: only tokens still waiting, by deadline.
        Index(
            "ix_tokens_waiting_deadline",
            "timeout_at",
            sqlite_where=text("status = 'WAITING' AND timeout_at IS NOT NULL"),
            postgresql_where=text("status = 'WAITING' AND timeout_at IS NOT NULL"),
        ),
    )


class TokenTag(db.Model):
    __tablename__ = "token_tags"

    token_pk: Mapped[int] = mapped_column(
        ForeignKey("tokens.pk", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(limits.TAG_MAX), primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    # Copies of the token's columns, kept in step by the lifecycle module.
    status: Mapped[str] = mapped_column(String(16))
    timeout_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # "status + tag, newest first" is a range scan; with the deadline in the index,
        # effective-status checks and the dashboard's counts never read the table.
        Index(
            "ix_token_tags_project_tag_status_pk_timeout",
            "project_id",
            "tag",
            "status",
            "token_pk",
            "timeout_at",
        ),
    )


class IdempotencyKey(db.Model):
    """The live idempotency keys of a project: the primary key makes them unique."""

    __tablename__ = "idempotency_keys"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_pk: Mapped[int] = mapped_column(ForeignKey("tokens.pk", ondelete="CASCADE"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Completion(db.Model):
    """Who or what completed a token, written by the one request that did."""

    __tablename__ = "completions"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    token_pk: Mapped[int] = mapped_column(ForeignKey("tokens.pk", ondelete="CASCADE"), unique=True)
    # api (API key), callback (the URL's JSON POST), page (the approval page form),
    # dashboard (an operator; actor is their email; with no output for "time out now"),
    # cancel (withdrawn through the API's cancel route; comment is the reason).
    source: Mapped[str] = mapped_column(String(16))
    # Set for an approve/reject decision; None for a completion with arbitrary output.
    approved: Mapped[bool | None] = mapped_column(Boolean)
    actor: Mapped[str | None] = mapped_column(String(320))
    comment: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(db.Model):
    """Append-only: one row per change of a token, written in the same transaction as the
    change (``lifecycle``). The token as it stood is rendered from the token itself
    (``domain.events``): a token never changes after its final status, and a created event
    shows it as it was created."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    token_pk: Mapped[int] = mapped_column(ForeignKey("tokens.pk", ondelete="CASCADE"))
    # waitpoint.created | waitpoint.completed | waitpoint.timed_out
    type: Mapped[str] = mapped_column(String(32))
    # How: api, callback, page, dashboard (completions and an operator's time-out), or
    # sweep / request (a time-out stored by the sweep, or by a request that found it due).
    source: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_events_project_id", "project_id", "id"),
        Index("ix_events_token_pk", "token_pk"),
    )


class WebhookEndpoint(db.Model):
    """Where a project's events are sent (``infra.webhooks``), signed with ``secret``."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    # The event types it wants, as a JSON array; [] means every type.
    event_types: Mapped[str] = mapped_column(Text, default="[]")
    # whsec_<base64>: Standard Webhooks signing secret. Stored as is (it must sign).
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it was disabled (by an operator, or after failing everything for days).
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # Since when every delivery has failed (None after any success).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_webhook_endpoints_project_id", "project_id"),)


class Delivery(db.Model):
    """One event to one destination: an endpoint, or a token's own ``webhook_url``.
    Written with the event (an outbox); sent in the background until it succeeds or its
    retries run out."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    token_pk: Mapped[int] = mapped_column(ForeignKey("tokens.pk", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)  # where it goes, as it was when the event happened
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A sender's claim: others leave it alone until then (a crashed sender's expires).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The senders' work queue: only what is still pending, by when it is due.
        Index(
            "ix_deliveries_pending_due",
            "next_attempt_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_deliveries_endpoint_id", "endpoint_id", "id"),
        Index("ix_deliveries_token_pk", "token_pk", "id"),
        Index("ix_deliveries_event_id", "event_id"),
    )


class DeliveryAttempt(db.Model):
    """One try at sending a delivery: when, how long, what came back."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Double)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)  # the first bytes, as text
    error: Mapped[str | None] = mapped_column(Text)  # a timeout, a refused address...

    __table_args__ = (Index("ix_delivery_attempts_delivery_id", "delivery_id", "id"),)


APPROVED = "approved"
REJECTED = "rejected"


class TokenApprover(db.Model):
    """A named approver of a token, and their vote (``domain.approvers``): the row is the
    vote, so each approver decides at most once (a conditional UPDATE on ``decision``)."""

    __tablename__ = "token_approvers"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    token_pk: Mapped[int] = mapped_column(ForeignKey("tokens.pk", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(Integer)
    # 1, 2, ... in the order given at create: what the personal link names.
    position: Mapped[int] = mapped_column(Integer)
    email: Mapped[str] = mapped_column(String(limits.EMAIL_MAX))
    name: Mapped[str | None] = mapped_column(String(limits.APPROVER_NAME_MAX))
    decision: Mapped[str | None] = mapped_column(String(16))  # approved | rejected
    comment: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_json: Mapped[str | None] = mapped_column(Text)  # what they filled in (approvals)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))

    __table_args__ = (
        Index("ux_token_approvers_token_position", "token_pk", "position", unique=True),
        # "Waiting on <email>": the tokens of a project where this approver has not voted.
        Index("ix_token_approvers_project_email", "project_id", "email", "token_pk"),
    )


class MailMessage(db.Model):
    """An email to an approver, written with what caused it (an outbox, like
    ``deliveries``) and sent in the background (``infra.mailer``). What was sent (subject
    and both parts) is kept: the dashboard shows it, and it is the local mailbox."""

    __tablename__ = "mail_messages"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    token_pk: Mapped[int] = mapped_column(ForeignKey("tokens.pk", ondelete="CASCADE"))
    approver_id: Mapped[int] = mapped_column(ForeignKey("token_approvers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # request | reminder | closed
    to_email: Mapped[str] = mapped_column(String(limits.EMAIL_MAX))
    # pending | sent | skipped (no longer needed when due) | failed
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    transport: Mapped[str | None] = mapped_column(String(16))  # smtp | mailbox, once sent
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The mailers' work queue: only what is still pending, by when it is due.
        Index(
            "ix_mail_messages_pending_due",
            "next_attempt_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_mail_messages_token_pk", "token_pk", "id"),
        Index("ix_mail_messages_project_id", "project_id", "id"),
        Index("ix_mail_messages_approver_id", "approver_id"),
    )
