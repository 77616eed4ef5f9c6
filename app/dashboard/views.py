"""Dashboard pages: the token board of a project, a token's detail, operator actions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import urlencode

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from ..domain import accounts, approvers, capability, lifecycle, stored, token_list, webhooks
from ..domain.jsontext import check_text
from ..domain.limits import TAG_MAX, TAGS_MAX
from ..domain.stored import StoredToken
from ..domain.timeutil import as_utc, parse_duration, utcnow
from ..extensions import htmx
from ..models import STATUSES
from ..web.security import add_security_headers, completion_record
from ..web.templating import STATUS_LABELS
from . import approver_mail, bp, responses
from .auth import login_required
from .board import BoardFilter, board_page, status_counts, tag_suggestions
from .forms import (
    ActionForm,
    ApproverFilterForm,
    CompleteForm,
    LogoutForm,
    TimeoutForm,
    WithdrawForm,
    decision_form,
)

PAGE_SIZE = 25
MAX_TAGS = TAGS_MAX
PERIODS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
TABS = (*STATUS_LABELS.items(), ("ALL", "All"))


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
    return {"logout_form": LogoutForm(), "user": g.get("user")}


def _project(project_id: int):
    project = accounts.member_project(g.user.id, project_id)
    if project is None:
        abort(404)  # not theirs, or no such project: the same answer
    return project


@bp.get("/dashboard/")
@login_required
def home():
    if not g.user.projects:
        return render_template("dashboard/no_projects.html")
    return redirect(url_for("dashboard.tokens", project_id=g.user.projects[0].id))


class Filters:
    """The board's filter state, read from (and written back to) the query string."""

    def __init__(self, args: MultiDict, now: datetime):
        self.status = args.get("status", "WAITING")
        if self.status not in (*STATUSES, "ALL"):
            self.status = "WAITING"
        self.errors: list[str] = []
        tags = [t.strip() for t in args.getlist("tag") if t.strip()]
        self.tags = tuple(dict.fromkeys(t for t in tags if self._usable(t, TAG_MAX, "Tag")))
        if len(self.tags) > MAX_TAGS:
            self.errors.append(f"At most {MAX_TAGS} tags at once; using the first {MAX_TAGS}.")
            self.tags = self.tags[:MAX_TAGS]
        q = args.get("q", "").strip()
        self.q = q if self._usable(q, 2048, "Search") else ""
        self.created = args.get("created", "")
        self.from_date = args.get("from", "")
        self.to_date = args.get("to", "")
        self.created_from, self.created_to = self._created_range(now)
        self.approver_form = ApproverFilterForm(args)
        valid = self.approver_form.validate()  # its error shows next to its field
        self.approver = (self.approver_form.approver.data or None) if valid else None
        self.after = self._cursor(args.get("after"))
        self.before = self._cursor(args.get("before")) if self.after is None else None
        self._tag_links: dict[tuple[str, str], str] = {}

    def _usable(self, text: str, limit: int, label: str) -> bool:
        try:
            check_text(text)
        except ValueError as exc:
            self.errors.append(f"{label}: {exc}; ignored.")
            return False
        if len(text) > limit:
            self.errors.append(f"{label}: longer than {limit} characters; ignored.")
            return False
        return True

    def _created_range(self, now: datetime):
        start = end = None
        if self.created in PERIODS:
            start = now - parse_duration(self.created)
        elif self.created == "custom":
            start, end = self._date(self.from_date, "From"), self._date(self.to_date, "To")
            if end is not None and end < datetime.max.replace(tzinfo=end.tzinfo) - timedelta(2):
                end += timedelta(days=1)  # the whole "to" day
        else:
            self.created = ""
        return start, end

    def _date(self, text: str, label: str) -> datetime | None:
        if not text:
            return None
        try:
            return as_utc(datetime.strptime(text, "%Y-%m-%d"))
        except (ValueError, OverflowError):
            self.errors.append(f"{label}: use a date like 2026-11-28.")
            return None

    def _cursor(self, value: str | None) -> int | None:
        if not value:
            return None
        try:
            return token_list.decode_cursor(value)
        except token_list.BadCursor:
            self.errors.append("That page link is not valid any more; showing the newest.")
            return None

    def board_filter(self, status: str | None = "current") -> BoardFilter:
        status = self.status if status == "current" else status
        return BoardFilter(
            status=None if status == "ALL" else status,
            tags=self.tags,
            search=self.q or None,
            created_from=self.created_from,
            created_to=self.created_to,
            approver=self.approver,
        )

    def args(self, **changes) -> dict:
        """Query arguments for a link: these filters with ``changes`` applied."""
        args = {
            "status": self.status,
            "tag": list(self.tags),
            "q": self.q,
            "created": self.created,
            "from": self.from_date,
            "to": self.to_date,
            "approver": self.approver,
        }
        args.update(changes)
        return {k: v for k, v in args.items() if v not in ("", None, [])}

    def tag_link(self, board_url: str, tag: str) -> str:
        """The board narrowed by one more tag: on every row, so built once per tag."""
        key = (board_url, tag)
        if key not in self._tag_links:
            tags = list(dict.fromkeys((*self.tags, tag)))
            query = urlencode(self.args(tag=tags), doseq=True, safe=":")
            self._tag_links[key] = f"{board_url}?{query}"
        return self._tag_links[key]


@bp.get("/dashboard/p/<id:project_id>/tokens")
@login_required
def tokens(project_id: int):
    project = _project(project_id)
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
