"""What the sync and async clients share: settings, request bodies, error mapping."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from .errors import (
    APIError,
    AuthenticationError,
    NotFoundError,
    RateLimited,
    ServerError,
    ValidationError,
    WaitpointError,
)
from .models import Approver, CreatedToken, Token, WaitResult

TOKENS = "/api/v1/waitpoints/tokens"
TokenRef = str | CreatedToken | Token
ApproverRef = Approver | Mapping[str, Any] | str
Duration = str | timedelta | int | float


class _Unset:
    """The default of an argument whose every value, ``None`` included, means something."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Settings:
    base_url: str
    api_key: str
    timeout: float = 30.0  # seconds, for every call but the long poll
    max_retries: int = 3  # for idempotent calls, on connection errors and 5xx
    poll_window: float = 30.0  # seconds each wait request may be held by the server


def settings(base_url: str | None, api_key: str | None, **options: Any) -> Settings:
    base_url = base_url or os.environ.get("WAITPOINT_URL")
    api_key = api_key or os.environ.get("WAITPOINT_API_KEY")
    if not base_url:
        raise WaitpointError("base_url is required (or set WAITPOINT_URL)")
    if not api_key:
        raise WaitpointError("api_key is required (or set WAITPOINT_API_KEY)")
    window = options.get("poll_window", Settings.poll_window)
    if not 1 <= window <= 60:
        raise WaitpointError("poll_window must be between 1 and 60 seconds")
    return Settings(base_url.rstrip("/"), api_key, **options)


def headers(config: Settings) -> dict:
    return {"Authorization": f"Bearer {config.api_key}", "User-Agent": "waitpoint-python/0.1"}


def token_id(token: TokenRef) -> str:
    return token if isinstance(token, str) else token.id


def duration(value: Duration) -> str:
    """A duration for the wire: strings as given (the server checks them), numbers of
    seconds and timedeltas rounded up to whole seconds; zero or less is refused."""
    if isinstance(value, str):
        return value
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, not {value!r}")
    return f"{math.ceil(seconds)}s"


def aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (a naive datetime is ambiguous)")
    return value


def create_body(
    *,
    timeout: str | datetime | timedelta | None = None,
    tags: str | Iterable[str] | None = None,
    idempotency_key: str | None = None,
    idempotency_key_ttl: str | timedelta | None = None,
    title: str | None = None,
    description: str | None = None,
    details: dict[str, str | int | float | bool] | None = None,
    approvers: Iterable[ApproverRef] | None = None,
    required_approvals: int | None = None,
    requested_by: str | None = None,
    reminders: Duration | Iterable[Duration] | None = None,
    form: Mapping[str, Any] | None = None,
    approve_label: str | None = None,
    reject_label: str | None = None,
    timeout_output: Any = UNSET,
) -> dict:
    body: dict[str, Any] = {}
    if timeout is not None:
        body["timeout"] = (
            aware(timeout, "timeout").isoformat()
            if isinstance(timeout, datetime)
            else duration(timeout)
        )
    if tags is not None:
        body["tags"] = tags if isinstance(tags, str) else list(tags)
    if idempotency_key is not None:
        body["idempotencyKey"] = idempotency_key
    if idempotency_key_ttl is not None:
        body["idempotencyKeyTTL"] = duration(idempotency_key_ttl)
    for name, value in (("title", title), ("description", description), ("details", details)):
        if value is not None:
            body[name] = value
    # Named approvers (Waitpoint extensions): sent only when given, so that a request
    # without them is exactly the TypeScript SDK's.
    if approvers is not None:
        body["approvers"] = [_approver(a) for a in approvers]
    if required_approvals is not None:
        body["requiredApprovals"] = required_approvals
    if requested_by is not None:
        body["requestedBy"] = requested_by
    if reminders is not None:
        single = isinstance(reminders, Duration)
        body["reminders"] = [duration(r) for r in ([reminders] if single else reminders)]
    # Response forms (Waitpoint extensions), likewise only when given. The server judges
    # the form; ``timeout_output=None`` is sent, as JSON null: a time-out then outputs null.
    if form is not None:
        body["form"] = dict(form)
    if approve_label is not None:
        body["approveLabel"] = approve_label
    if reject_label is not None:
        body["rejectLabel"] = reject_label
    if timeout_output is not UNSET:
        body["timeoutOutput"] = timeout_output
    return body


def _approver(approver: ApproverRef) -> dict:
    if isinstance(approver, Approver):
        return approver.to_json()
    if isinstance(approver, str):
        return {"email": approver}
    return dict(approver)


def _instant(value: datetime | str, name: str) -> str:
    if isinstance(value, datetime):
        return str(int(aware(value, name).timestamp() * 1000))
    return value


def list_params(
    *,
    status: str | Iterable[str] | None = None,
    tags: str | Iterable[str] | None = None,
    idempotency_key: str | None = None,
    period: str | timedelta | None = None,
    from_: datetime | str | None = None,
    to: datetime | str | None = None,
    approver: str | None = None,
    page_size: int = 25,
) -> dict:
    params: dict[str, str] = {"page[size]": str(page_size)}
    if status is not None:
        params["filter[status]"] = status if isinstance(status, str) else ",".join(status)
    if tags is not None:
        params["filter[tags]"] = tags if isinstance(tags, str) else ",".join(tags)
    if idempotency_key is not None:
        params["filter[idempotencyKey]"] = idempotency_key
    if period is not None:
        params["filter[createdAt][period]"] = duration(period)
    if from_ is not None:
        params["filter[createdAt][from]"] = _instant(from_, "from_")
    if to is not None:
        params["filter[createdAt][to]"] = _instant(to, "to")
    if approver is not None:
        params["filter[approver]"] = approver
    return params


def check(response: httpx.Response) -> dict:
    """The JSON body of a 2xx response, or the matching exception."""
    if response.is_success:
        return response.json()
    try:
        message = response.json().get("error", response.text)
    except ValueError:
        message = response.text or response.reason_phrase
    status = response.status_code
    if status == 401:
        raise AuthenticationError(status, message)
    if status == 404:
        raise NotFoundError(status, message)
    if status in (400, 413, 422):
        raise ValidationError(status, message)
    if status == 429:
        raise RateLimited(status, message, retry_after(response))
    if status >= 500:
        raise ServerError(status, message)
    raise APIError(status, message)


def retryable(response: httpx.Response, idempotent: bool) -> bool:
    """Worth sending again: a server error for a call that may be repeated, or, for any
    call, an answer that says nothing was done (429 rate limited, 503 busy)."""
    if response.status_code in (429, 503):
        return True
    return idempotent and response.status_code >= 500


MAX_RETRY_AFTER = 60.0


def retry_after(response: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds (at most a minute), if it sent one."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER) if math.isfinite(seconds) else None


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: 0.25 s, 0.5 s, 1 s ... at most 8 s."""
    return random.uniform(0, min(8.0, 0.25 * 2**attempt))


def pause(
    response: httpx.Response | None, attempt: int, backoff: Callable[[int], float] = backoff
) -> float:
    """How long to wait before the next attempt: the server's word, else ``backoff``."""
    told = retry_after(response) if response is not None else None
    return told if told is not None else backoff(attempt)


NO_DATA = object()  # complete_token without data: the token gets no output at all


def complete_body(data: Any) -> dict:
    return {} if data is NO_DATA else {"data": data}


def wait_window(settings: Settings, ends: float | None, now: float) -> float:
    """Seconds to ask the server to hold the next wait for."""
    return settings.poll_window if ends is None else min(settings.poll_window, ends - now)


def wait_result(token: Token) -> WaitResult:
    if token.status == "COMPLETED":
        return WaitResult(ok=True, token=token, output=token.output)
    # Timed out: the output is the token's timeoutOutput, if it was created with one.
    return WaitResult(ok=False, token=token, output=token.output, error=token.error)
