"""Exceptions raised by the client."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # models imports this module
    from .models import Token


class WaitpointError(Exception):
    """Base class of every error this package raises."""


class APIError(WaitpointError):
    """The server answered with an error status; ``message`` is its ``error`` text."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class NotFoundError(APIError):
    """404: no such token in the key's project."""


class ValidationError(APIError):
    """400, 413 or 422: the request was refused; the message names the field."""


class RateLimited(APIError):
    """429 after the retries were used up: too many requests; ``retry_after`` in seconds."""

    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(status, message)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx after the retries for idempotent calls were used up."""


class ConnectionFailed(WaitpointError):
    """The server could not be reached (after retries, for idempotent calls)."""


class WaitpointTimeoutError(WaitpointError):
    """The token itself timed out: nobody completed it before its ``timeoutAt``."""


class WaitDeadlineExceeded(WaitpointError):
    """``for_token(..., deadline=...)`` ran out on the client while the token was
    still waiting. The token is untouched and can be waited for again."""


class WebhookVerificationError(WaitpointError):
    """``webhooks.verify``: the delivery is not signed with this secret, was changed, is
    too old or too new (a replay), or is not a Waitpoint event. Answer it with a 4xx."""


class ApprovalError(WaitpointError):
    """``@require_approval``: the call was not approved, so the function did not run.
    ``token`` is the decided token (``token.url`` its page, ``token.output`` what ended it)."""

    def __init__(self, message: str, token: Token):
        super().__init__(message)
        self.token = token


class ApprovalRejected(ApprovalError):
    """Someone rejected it: ``approver`` (an email or a name, None if the page did not
    ask) and ``comment`` ("" when none was given)."""

    def __init__(self, message: str, token: Token, approver: str | None, comment: str):
        super().__init__(message, token)
        self.approver = approver
        self.comment = comment


class ApprovalTimedOut(ApprovalError):
    """Nobody decided before the token's timeout."""


class ApprovalWithdrawn(ApprovalError):
    """The token was withdrawn (``POST .../cancel``) before anyone decided; ``reason``
    is the server's message ("Withdrawn: <reason>" or "The request was withdrawn")."""

    def __init__(self, message: str, token: Token, reason: str):
        super().__init__(message, token)
        self.reason = reason
