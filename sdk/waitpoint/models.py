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

    @classmethod
    def from_json(cls, body: dict) -> Token:
        output, error = None, None
        if "output" in body:
            data = json.loads(body["output"])
            if body.get("outputIsError"):
                error = WaitpointTimeoutError(data.get("message", "Waitpoint timed out"))
            else:
                output = data
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
            ),
            output=output,
            error=error,
            raw=body,
        )


@dataclass(frozen=True)
class WaitResult(Generic[T]):
    """What ``for_token`` returns: ``ok`` with ``output``, or not ok with ``error``."""

    ok: bool
    token: Token
    output: T | None = None
    error: WaitpointTimeoutError | None = None

    def unwrap(self) -> T | None:
        """The output, or raise the ``WaitpointTimeoutError``."""
        if not self.ok:
            raise self.error or WaitpointTimeoutError("Waitpoint timed out")
        return self.output


@dataclass(frozen=True)
class CompleteResult:
    success: bool
    applied: bool
    status: Status
