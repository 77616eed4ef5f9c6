"""What the HTML blueprints share: security headers, and who is making a request."""

from __future__ import annotations

from flask import request

from ..domain.jsontext import check_text
from ..domain.lifecycle import CompletionRecord

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    # Approval URLs are secrets: never send one to a site linked from a description.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}


def add_security_headers(response):
    response.headers.update(SECURITY_HEADERS)
    return response


def storable_text(_form, field) -> None:
    """A WTForms validator: the text must fit a database text column (no NUL)."""
    from wtforms.validators import ValidationError

    try:
        check_text(field.data or "")
    except ValueError as exc:
        message = str(exc)
        raise ValidationError(message[0].upper() + message[1:] + ".") from None


def completion_record(source: str, actor: str | None = None) -> CompletionRecord:
    """A record of this request as the one completing a token: source, actor, IP, agent."""
    return CompletionRecord(
        source=source,
        actor=actor,
        ip=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:512] or None,
    )
