"""Typed results, built from the server's JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from .errors import WaitpointTimeoutError

Status = Literal["WAITING", "COMPLETED", "TIMED_OUT"]
T = TypeVar("T")


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class CreatedToken:
    id: str
    url: str
    is_cached: bool

    @classmethod
    def from_json(cls, body: dict) -> CreatedToken:
        return cls(id=body["id"], url=body["url"], is_cached=body["isCached"])


@dataclass(frozen=True)
class Decision:
    approved: bool
    comment: str
    decided_at: datetime
    source: str
    approver: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    response: dict[str, Any] | None = None  # the response form's answers, on an approval


@dataclass(frozen=True)
class Approver:
    """A named approver to create a token with (``approvers=[Approver(...)]``); a dict
    ``{"email", "name"}`` or an email string does as well."""

    email: str
    name: str | None = None

    def to_json(self) -> dict:
        body = {"email": self.email}
        if self.name is not None:
            body["name"] = self.name
        return body


@dataclass(frozen=True)
class ApproverState:
    """A named approver of a retrieved token, and their vote: ``decision`` is
    ``"approved"``, ``"rejected"`` or None (not yet)."""

    email: str
    name: str | None = None
    decision: Literal["approved", "rejected"] | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    response: dict[str, Any] | None = None  # what they filled in, if they approved

    @classmethod
    def from_json(cls, body: dict) -> ApproverState:
        return cls(
            email=body["email"],
            name=body.get("name"),
            decision=body.get("decision"),
            decided_at=_time(body.get("decidedAt")),
            comment=body.get("comment"),
            response=body.get("response"),
        )


@dataclass(frozen=True)
class Approval:
    """One approval in the output of a token its named approvers decided."""

    approver: str  # the email
    name: str | None
    comment: str  # "" when none was given
    decided_at: datetime
    response: dict[str, Any] | None = None  # the response form's answers, if it has one


def _approvals(output: Any) -> list[Approval]:
    """The ``approvals`` of a decision's output. Read defensively: an API call may also
    complete a token with named approvers, with whatever data it likes."""
    votes = output.get("approvals") if isinstance(output, dict) else None
    if not isinstance(votes, list):
        return []
    return [
        Approval(
            approver=vote["approver"],
            name=vote.get("name"),
            comment=vote.get("comment") or "",
            decided_at=_time(vote["decidedAt"]),
            response=vote["response"] if isinstance(vote.get("response"), dict) else None,
        )
        for vote in votes
        if isinstance(vote, dict) and "approver" in vote and "decidedAt" in vote
    ]


@dataclass(frozen=True)
class Token:
    """A token as retrieved (``output``/``error`` set once it is decided)."""

    id: str
    url: str
    status: Status
    tags: list[str]
    created_at: datetime
    timeout_at: datetime | None = None
    completed_at: datetime | None = None
    idempotency_key: str | None = None
    idempotency_key_expires_at: datetime | None = None
    title: str | None = None
    description: str | None = None
    details: dict[str, Any] | None = None
    decision: Decision | None = None
    output: Any = None
    error: WaitpointTimeoutError | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    # Named approvers (a Waitpoint extension), in the order given; only in a retrieved
    # token (not in a listed one). Empty and None for a token without them.
    approvers: list[ApproverState] = field(default_factory=list)
    required_approvals: int | None = None
    requested_by: str | None = None
    # Response forms (Waitpoint extensions); only in a retrieved token. ``timeout_output``
    # is the parsed JSON; ``has_timeout_output`` tells a null one from none at all.
    form: dict[str, Any] | None = None
    approve_label: str | None = None
    reject_label: str | None = None
    timeout_output: Any = None
    has_timeout_output: bool = False

    @property
    def timed_out(self) -> bool:
        return self.status == "TIMED_OUT"

    @property
    def response(self) -> dict[str, Any] | None:
        """The response form's answers of the approval that decided the token (None if
        it has no form, was rejected, or was completed through the API)."""
        return self.decision.response if self.decision is not None else None

    @property
    def approvals(self) -> list[Approval]:
        """The approvals in the output of a token its named approvers decided, in the
        order they came; [] for any other token."""
        return _approvals(self.output) if self.required_approvals is not None else []

    @property
    def rejected_by(self) -> str | None:
        """The email of the named approver whose rejection decided the token."""
        if self.required_approvals is None or not isinstance(self.output, dict):
            return None
        rejected_by = self.output.get("rejectedBy")
        return rejected_by if isinstance(rejected_by, str) else None

    @classmethod
    def from_json(cls, body: dict) -> Token:
        output, error = None, None
        has_timeout_output = "timeoutOutput" in body
        if "output" in body:
            data = json.loads(body["output"])
            if not body.get("outputIsError"):
                output = data
            elif has_timeout_output:
                # A time-out outputs the timeoutOutput the token was created with: it is
                # the output, and the error says when it timed out.
                output = data
                error = WaitpointTimeoutError(f"Waitpoint timed out at {body.get('timeoutAt')}")
            else:
                message = data.get("message") if isinstance(data, dict) else None
                error = WaitpointTimeoutError(message or "Waitpoint timed out")
        decision = body.get("decision")
        return cls(
            id=body["id"],
            url=body["url"],
            status=body["status"],
            tags=list(body.get("tags", [])),
            created_at=_time(body["createdAt"]),
            timeout_at=_time(body.get("timeoutAt")),
            completed_at=_time(body.get("completedAt")),
            idempotency_key=body.get("idempotencyKey"),
            idempotency_key_expires_at=_time(body.get("idempotencyKeyExpiresAt")),
            title=body.get("title"),
            description=body.get("description"),
            details=body.get("details"),
            decision=None
            if decision is None
            else Decision(
                approved=decision["approved"],
                comment=decision.get("comment", ""),
                decided_at=_time(decision["decidedAt"]),
                source=decision["source"],
                approver=decision.get("approver"),
                ip=decision.get("ip"),
                user_agent=decision.get("userAgent"),
                response=decision.get("response"),
            ),
            output=output,
            error=error,
            raw=body,
            approvers=[ApproverState.from_json(a) for a in body.get("approvers") or ()],
            required_approvals=body.get("requiredApprovals"),
            requested_by=body.get("requestedBy"),
            form=body.get("form"),
            approve_label=body.get("approveLabel"),
            reject_label=body.get("rejectLabel"),
            timeout_output=json.loads(body["timeoutOutput"]) if has_timeout_output else None,
            has_timeout_output=has_timeout_output,
        )


@dataclass(frozen=True)
class WaitResult(Generic[T]):
    """What ``for_token`` returns: ``ok`` with ``output``, or not ok with ``error`` (the
    token timed out). A token created with ``timeout_output`` that times out is still
    not ok, with its ``error``, and ``output`` is that timeout output."""

    ok: bool
    token: Token
    output: T | None = None
    error: WaitpointTimeoutError | None = None

    @property
    def timed_out(self) -> bool:
        """Nobody decided before the token's timeout."""
        return self.token.timed_out

    @property
    def response(self) -> dict[str, Any] | None:
        """For a token with a response form, approved: the approver's answers."""
        return self.token.response

    @property
    def approvals(self) -> list[Approval]:
        """For a token with named approvers: who approved, when, with what comment."""
        return self.token.approvals

    @property
    def rejected_by(self) -> str | None:
        """For a token with named approvers: who rejected it (None if nobody did)."""
        return self.token.rejected_by

    def unwrap(self) -> T | None:
        """The output, or raise the ``WaitpointTimeoutError`` if the token timed out
        without a ``timeout_output`` (with one, that is the output returned)."""
        if not self.ok and not (self.timed_out and self.token.has_timeout_output):
            raise self.error or WaitpointTimeoutError("Waitpoint timed out")
        return self.output


@dataclass(frozen=True)
class CompleteResult:
    success: bool
    applied: bool
    status: Status
