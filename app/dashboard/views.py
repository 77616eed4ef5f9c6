"""Dashboard pages: the token board of a project, a token's detail, operator actions."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import abort, flash, g, redirect, render_template, request, session, url_for

from ..domain import accounts, approvers, capability, lifecycle, stored, webhooks
from ..domain.limits import TAG_MAX
from ..domain.stored import StoredToken
from ..domain.timeutil import utcnow
from ..extensions import htmx
from ..web.security import add_security_headers, completion_record
from ..web.templating import STATUS_LABELS
from . import approver_mail, bp, responses
from .auth import LAST_PROJECT, login_required
from .board import board_page, status_counts, tag_suggestions
from .filters import PERIODS, Filters, query_string, without_empty
from .forms import (
    ActionForm,
    CompleteForm,
    LogoutForm,
    TimeoutForm,
    WithdrawForm,
    decision_form,
)

PAGE_SIZE = 25
TABS = (*STATUS_LABELS.items(), ("ALL", "All"))
DUE_SOON = timedelta(minutes=10)  # a waiting token this close to its time-out is marked


# Headers a page may set for itself: the Mail page frames a message, and the frame's own
# policy is stricter still. Every other response gets the app's, unchanged.
OWN_POLICY = ("Content-Security-Policy", "X-Frame-Options")


@bp.after_request
def _security_headers(response):
    own = {name: response.headers[name] for name in OWN_POLICY if name in response.headers}
    add_security_headers(response)
    response.headers.update(own)
    return response


@bp.context_processor
def _layout():
    user = g.get("user")
    projects = by_name(user.projects) if user is not None else []
    return {
        "logout_form": LogoutForm(),
        "user": user,
        "projects": projects,
        "board_query": query_string,
    }


def by_name(projects: list) -> list:
    return sorted(projects, key=lambda p: (p.name.casefold(), p.name))


def _project(project_id: int):
    project = accounts.member_project(g.user.id, project_id)
    if project is None:
        abort(404)  # not theirs, or no such project: the same answer
    if request.method == "GET" and session.get(LAST_PROJECT) != project.id:
        session[LAST_PROJECT] = project.id  # only on a change: no new cookie per poll
    return project


@bp.get("/dashboard/")
@login_required
def home():
    """The project used last (remembered in the session), else the first by name."""
    if not g.user.projects:
        return render_template("dashboard/no_projects.html")
    last = session.get(LAST_PROJECT)
    projects = by_name(g.user.projects)
    project = next((p for p in projects if p.id == last), projects[0])
    return redirect(url_for("dashboard.tokens", project_id=project.id))


@bp.get("/dashboard/p/<id:project_id>/tokens")
@login_required
def tokens(project_id: int):
    project = _project(project_id)
    board_url = url_for("dashboard.tokens", project_id=project.id)
    clean = without_empty(request.args)
    if clean is not None:  # the form sent without JavaScript: its empty fields too
        return redirect(f"{board_url}?{clean}" if clean else board_url)
    now = utcnow()
    filters = Filters(request.args, now)
    page = board_page(
        project.id,
        filters.board_filter(),
        now,
        PAGE_SIZE,
        after=filters.after,
        before=filters.before,
    )
    page.tokens = lifecycle.settle_overdue(page.tokens, now)
    context = {
        "project": project,
        "filters": filters,
        "page": page,
        "counts": status_counts(project.id, filters.board_filter(), now),
        "progress": approvers.progress_of_tokens(page.tokens),
        "tabs": TABS,
        "periods": PERIODS,
        "board_url": board_url,
        "due_soon": DUE_SOON,
        "now": now,
    }
    if htmx and htmx.target == "board":
        return render_template("dashboard/_board.html", **context)
    return render_template("dashboard/tokens.html", **context)


@bp.get("/dashboard/p/<id:project_id>/tags")
@login_required
def tags(project_id: int):
    project = _project(project_id)
    prefix = request.args.get("tag", "").strip()[:TAG_MAX]
    return render_template("dashboard/_tag_options.html", tags=tag_suggestions(project.id, prefix))


def _token(project_id: int, token_id: str) -> tuple:
    project = _project(project_id)
    token = stored.find_token(token_id, project.id)
    if token is None:
        abort(404)
    return project, token


@bp.get("/dashboard/p/<id:project_id>/tokens/<token_id>")
@login_required
def detail(project_id: int, token_id: str, forms: dict | None = None, status: int = 200):
    project, token = _token(project_id, token_id)
    now = utcnow()
    forms = forms or {}
    token = lifecycle.settled(token, now)
    output = _pretty(token.output) if token.output is not None else None
    if token.status == "TIMED_OUT":
        output = _pretty(lifecycle.timeout_output(token))
    context = {
        "project": project,
        "token": token,
        "status": token.status,
        "public_id": token.id,
        "callback_url": capability.callback_url(token.id),
        "output": output,
        "details": token.details,
        "tags": token.tags,
        # A fresh form shows its defaults, even on a page re-shown after another POST.
        "decision_form": forms.get("decision") or decision_form(token.form_json, formdata=None),
        "asked": responses.of_token(token),
        "response": responses.decision_response(token),
        "timeout_output": (
            _pretty(token.timeout_output) if token.timeout_output is not None else None
        ),
        "complete_form": forms.get("complete") or CompleteForm(),
        "timeout_form": TimeoutForm(),
        "deliveries": webhooks.delivery_log(project.id, token_pk=token.pk),
        "approver_mail": approver_mail.of_token(token),
        "withdraw_form": forms.get("withdraw") or WithdrawForm(),
        "action_form": ActionForm(),
        "now": now,
    }
    return render_template("dashboard/detail.html", **context), status


def _pretty(text: str) -> str:
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False)


def _record(source: str = "dashboard") -> lifecycle.CompletionRecord:
    return completion_record(source, actor=g.user.email)


def _after_action(project_id: int, token: StoredToken, applied: bool, done: str):
    if applied:
        flash(done, "success")
    else:
        flash("Nothing changed: the token had already been decided.", "warning")
    return redirect(
        url_for("dashboard.detail", project_id=project_id, token_id=token.id),
        code=303,
    )


@bp.post("/dashboard/p/<id:project_id>/tokens/<token_id>/decide")
@login_required
def decide(project_id: int, token_id: str):
    _, token = _token(project_id, token_id)
    form = decision_form(token.form_json)
    approved = form.validated_choice()
    if approved is None:
        return detail(project_id, token_id, forms={"decision": form}, status=422)
    comment = form.comment.data or ""
    applied = lifecycle.decide_token(token.pk, approved, comment, _record(), response=form.response)
    return _after_action(project_id, token, applied, "Approved." if approved else "Rejected.")


@bp.post("/dashboard/p/<id:project_id>/tokens/<token_id>/complete")
@login_required
def complete(project_id: int, token_id: str):
    _, token = _token(project_id, token_id)
    form = CompleteForm()
    if not form.validate_on_submit():
        return detail(project_id, token_id, forms={"complete": form}, status=422)
    applied = lifecycle.complete_token(token.pk, lifecycle.to_json_text(form.parsed), _record())
    return _after_action(project_id, token, applied, "Completed with your output.")


@bp.post("/dashboard/p/<id:project_id>/tokens/<token_id>/time-out")
@login_required
def time_out(project_id: int, token_id: str):
    _, token = _token(project_id, token_id)
    if not TimeoutForm().validate_on_submit():
        abort(400)
    applied = lifecycle.time_out_now(token.pk, _record())
    return _after_action(project_id, token, applied, "Timed out now.")


@bp.post("/dashboard/p/<id:project_id>/tokens/<token_id>/withdraw")
@login_required
def withdraw(project_id: int, token_id: str):
    """The API's cancel, by an operator: COMPLETED with the WAITPOINT_CANCELLED error."""
    _, token = _token(project_id, token_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        return detail(project_id, token_id, forms={"withdraw": form}, status=422)
    applied = lifecycle.cancel_token(token.pk, form.reason.data or None, _record("cancel"))
    return _after_action(
        project_id, token, applied, "Withdrawn. The integration gets the WAITPOINT_CANCELLED error."
    )
