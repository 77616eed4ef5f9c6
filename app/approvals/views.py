"""Approval page routes.

- ``GET  {callback URL}``               the page (read only, always)
- ``GET  /approve/<id>/<hash>/card``    htmx probe: 204 while waiting, else the final card
- ``POST /approve/<id>/<hash>``         the decision form (CSRF), 303 back to the page
"""

from __future__ import annotations

from flask import flash, get_flashed_messages, make_response, redirect, render_template
from flask_htmx import make_response as htmx_response

from ..domain import capability, lifecycle, stored
from ..domain.stored import StoredToken
from ..domain.timeutil import utcnow
from ..extensions import htmx
from ..models import TIMED_OUT
from ..web.forms import DecisionForm
from ..web.security import add_security_headers, completion_record
from ..web.templating import when_text
from . import bp

bp.after_request(add_security_headers)


def _urls(public_id: str, signature: str) -> dict:
    return {
        "page_url": capability.callback_path(public_id),
        "decide_url": f"/approve/{public_id}/{signature}",
        "probe_url": f"/approve/{public_id}/{signature}/card",
    }


def _not_valid():
    return make_response(render_template("approvals/not_found.html"), 404)


def _context(token: StoredToken, signature: str, form: DecisionForm | None, notice) -> dict:
    return {
        "token": lifecycle.settled(token, utcnow()),
        "form": form or DecisionForm(),
        "notice": notice,
        **_urls(token.id, signature),
    }


def _render_card(token: StoredToken, signature: str, form: DecisionForm | None, notice=None):
    return render_template("approvals/_card.html", **_context(token, signature, form, notice))


def _render_page(token: StoredToken, signature: str, form: DecisionForm | None, notice):
    return render_template("approvals/page.html", **_context(token, signature, form, notice))


@bp.get("/api/v1/waitpoints/tokens/<token_id>/callback/<signature>")
def page(token_id: str, signature: str):
    token = capability.token_for(token_id, signature)
    if token is None:
        return _not_valid()
    notices = get_flashed_messages(with_categories=True)
    return _render_page(token, signature, None, notices[-1] if notices else None)


@bp.get("/approve/<token_id>/<signature>/card")
def probe(token_id: str, signature: str):
    """Polled by the page while waiting: nothing to swap (204) until the token is final."""
    token = capability.token_for(token_id, signature)
    if token is None:
        return _not_valid()
    if lifecycle.settled(token, utcnow()).waiting:
        return "", 204
    return htmx_response(_render_card(token, signature, None), retarget="#card", reswap="outerHTML")


@bp.post("/approve/<token_id>/<signature>")
def decide(token_id: str, signature: str):
    token = capability.token_for(token_id, signature)
    if token is None:
        return _not_valid()
    form = DecisionForm()
    choice = form.validated_choice()
    if choice is None:
        return _invalid(token, signature, form)

    record = completion_record("page", actor=form.approver.data or None)
    applied = lifecycle.decide_token(token.pk, choice, form.comment.data or "", record)
    token = stored.token_by_pk(token.pk)
    notice = _notice(applied, choice, token)
    if htmx:
        return _render_card(token, signature, None, notice)
    flash(notice[1], notice[0])
    return redirect(capability.callback_path(token_id), code=303)


def _notice(applied: bool, approved: bool, token: StoredToken) -> tuple[str, str]:
    """The banner after a decision: (category, text). A rejection is not a success."""
    if applied and approved:
        return "success", "Thank you: you approved this request. Nothing else is needed."
    if applied:
        return "info", "Thank you: you rejected this request. Nothing else is needed."
    if token.status == TIMED_OUT:
        return (
            "warning",
            "Your response was not recorded: this request expired at "
            f"{when_text(token.timeout_at)}, before your response arrived.",
        )
    return (
        "warning",
        "Your response was not recorded: this request had already been decided, as shown below.",
    )


def _invalid(token: StoredToken, signature: str, form: DecisionForm):
    """Re-show the form with its errors: the card for htmx (200, so that htmx swaps it in),
    else the whole page with 422."""
    if htmx:
        return _render_card(token, signature, form)
    return _render_page(token, signature, form, None), 422
