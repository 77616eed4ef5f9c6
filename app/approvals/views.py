"""Approval page routes: the callback URL's page, and named approvers' personal links.

- ``GET  {callback URL}``                        the page (read only, always)
- ``GET  /approve/<id>/<hash>/card``             htmx probe: 204 while waiting, else the card
- ``POST /approve/<id>/<hash>``                  the decision form (CSRF), 303 back to the page
- ``GET  /approvers/<id>/<n>/<hash>``            the n-th named approver's page
- ``GET  /approvers/<id>/<n>/<hash>/card``       its probe
- ``POST /approvers/<id>/<n>/<hash>``            their vote (CSRF), 303 back to their page

A token with named approvers is decided by their votes only: its callback URL's page
shows the request and the progress, read only (the URL still completes it by JSON POST,
for integrations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flask import flash, get_flashed_messages, make_response, redirect, render_template
from flask_htmx import make_response as htmx_response

from ..domain import approvers, capability, lifecycle, stored
from ..domain.approvers import StoredApprover
from ..domain.stored import StoredToken
from ..domain.timeutil import utcnow
from ..extensions import htmx
from ..models import TIMED_OUT
from ..web.forms import DecisionForm, VoteForm, with_response
from ..web.security import add_security_headers, completion_record
from ..web.templating import when_text
from . import bp

bp.after_request(add_security_headers)


@dataclass(frozen=True)
class Link:
    """The URL a page was opened with: the callback URL, or an approver's personal link."""

    token: StoredToken
    signature: str
    approver: StoredApprover | None = None

    @property
    def page_url(self) -> str:
        if self.approver is None:
            return capability.callback_path(self.token.id)
        return capability.approver_path(self.token.id, self.approver.position)

    @property
    def decide_url(self) -> str:
        if self.approver is None:
            return f"/approve/{self.token.id}/{self.signature}"
        return self.page_url

    @property
    def probe_url(self) -> str:
        if self.approver is None:
            return f"/approve/{self.token.id}/{self.signature}/card"
        return self.page_url + "/card"

    def form_class(self):
        """The decision form (with a name) or a named approver's vote, and the token's
        response form's fields if it has one."""
        base = DecisionForm if self.approver is None else VoteForm
        return with_response(base, self.token.form_json)

    def new_form(self):
        return self.form_class()()


def _not_valid():
    return make_response(render_template("approvals/not_found.html"), 404)


def _callback_link(token_id: str, signature: str) -> Link | None:
    token = capability.token_for(token_id, signature)
    return Link(token, signature) if token is not None else None


def _personal_link(token_id: str, position: int, signature: str) -> Link | None:
    found = capability.approver_for(token_id, position, signature)
    return Link(found[0], signature, found[1]) if found is not None else None


def _context(link: Link, form, notice) -> dict:
    token = lifecycle.settled(link.token, utcnow())
    progress = approvers.progress_of(token)
    me = link.approver
    if me is not None:  # as it stands now (the link was read before a vote, say)
        me = next(a for a in progress.approvers if a.id == me.id)
    return {
        "token": token,
        "form": form or link.new_form(),
        "notice": notice,
        "progress": progress,
        "me": me,
        "page_url": link.page_url,
        "decide_url": link.decide_url,
        "probe_url": link.probe_url,
    }


def _render_card(link: Link, form=None, notice=None):
    """The card htmx swaps in, with the fine print below it (out of band): a closed page
    drops the warning about forwarding its link."""
    context = _context(link, form, notice)
    return render_template("approvals/_card.html", **context) + render_template(
        "approvals/_fineprint.html", oob=True, **context
    )


def _render_page(link: Link, form, notice):
    return render_template("approvals/page.html", **_context(link, form, notice))


def _page(link: Link | None):
    if link is None:
        return _not_valid()
    notices = get_flashed_messages(with_categories=True)
    return _render_page(link, None, notices[-1] if notices else None)


def _probe(link: Link | None):
    """Polled by the page while waiting: nothing to swap (204) until the token is final."""
    if link is None:
        return _not_valid()
    if lifecycle.settled(link.token, utcnow()).waiting:
        return "", 204
    return htmx_response(_render_card(link), retarget="#card", reswap="outerHTML")


@bp.get("/api/v1/waitpoints/tokens/<token_id>/callback/<signature>")
def page(token_id: str, signature: str):
    return _page(_callback_link(token_id, signature))


@bp.get("/approve/<token_id>/<signature>/card")
def probe(token_id: str, signature: str):
    return _probe(_callback_link(token_id, signature))


@bp.get("/approvers/<token_id>/<int:position>/<signature>")
def approver_page(token_id: str, position: int, signature: str):
    return _page(_personal_link(token_id, position, signature))


@bp.get("/approvers/<token_id>/<int:position>/<signature>/card")
def approver_probe(token_id: str, position: int, signature: str):
    return _probe(_personal_link(token_id, position, signature))


@bp.post("/approve/<token_id>/<signature>")
def decide(token_id: str, signature: str):
    link = _callback_link(token_id, signature)
    if link is None:
        return _not_valid()
    form = link.form_class()()
    choice = form.validated_choice()
    if choice is None:
        return _invalid(link, form)
    if link.token.required_approvals is not None:
        notice = (
            "warning",
            "Your response was not recorded: the named approvers decide this "
            "request, each through the personal link they were sent.",
        )
        return _after_post(link, notice, status=409)
    record = completion_record("page", actor=form.approver.data or None)
    comment = form.comment.data or ""
    response = getattr(form, "response", None)
    applied = lifecycle.decide_token(link.token.pk, choice, comment, record, response=response)
    link = replace(link, token=stored.token_by_pk(link.token.pk))  # as it stands now
    return _after_post(link, _notice(applied, choice, link.token))


@bp.post("/approvers/<token_id>/<int:position>/<signature>")
def approver_decide(token_id: str, position: int, signature: str):
    link = _personal_link(token_id, position, signature)
    if link is None:
        return _not_valid()
    form = link.form_class()()
    choice = form.validated_choice()
    if choice is None:
        return _invalid(link, form)
    outcome = lifecycle.vote(
        link.token.pk,
        link.approver.id,
        choice,
        form.comment.data or "",
        completion_record("page"),
        response=getattr(form, "response", None),
    )
    link = replace(link, token=stored.token_by_pk(link.token.pk))  # as it stands now
    if outcome.refused:
        return _after_post(link, ("warning", outcome.refused), status=409)
    if outcome.recorded:
        return _after_post(link, _vote_notice(choice, outcome.decided))
    return _after_post(link, _notice(False, choice, link.token))


def _after_post(link: Link, notice: tuple[str, str], status: int = 200):
    """The card with its notice for htmx (200, or htmx would not swap it); else flash it
    and redirect to the page (post/redirect/get)."""
    if htmx:
        return _render_card(link, None, notice), 200
    if status != 200:
        return _render_page(link, None, notice), status
    flash(notice[1], notice[0])
    return redirect(link.page_url, code=303)


def _vote_notice(approved: bool, decided: bool) -> tuple[str, str]:
    if not approved:
        return "info", "Thank you: you rejected this request. Nothing else is needed."
    if decided:
        return "success", "Thank you: your approval completed this request. Nothing else is needed."
    return (
        "success",
        "Thank you: your approval is recorded. The request waits for the other approvers.",
    )


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
    if token.waiting:  # a named approver who had answered already
        return "warning", "Your response was not recorded: you have already answered, as shown."
    return (
        "warning",
        "Your response was not recorded: this request had already been decided, as shown below.",
    )


def _invalid(link: Link, form):
    """Re-show the form with its errors: the card for htmx (200, so that htmx swaps it in),
    else the whole page with 422."""
    if htmx:
        return _render_card(link, form)
    return _render_page(link, form, None), 422
