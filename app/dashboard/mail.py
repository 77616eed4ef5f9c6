"""Dashboard: a project's mail to its named approvers (the Mail page, one message as its
approver got it), and "Resend link" on a token's page.

A message's HTML part is served by a route of its own, shown in a sandboxed frame: its
policy lets it have inline styles and data: images, nothing else, and be framed only
by this site's pages. The message page's own policy differs from the app's only by
allowing that frame.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for

from ..domain.timeutil import utcnow
from ..web.security import SECURITY_HEADERS
from . import approver_mail, bp
from .auth import login_required
from .forms import ActionForm
from .views import _project, _token

BIG_ID = "id(max=9223372036854775807)"  # mail messages have 64-bit ids
FRAMED_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
FRAMING_PAGE_POLICY = SECURITY_HEADERS["Content-Security-Policy"] + "; frame-src 'self'"


@bp.get("/dashboard/p/<id:project_id>/mail")
@login_required
def mail(project_id: int):
    project = _project(project_id)
    after = request.args.get("after", type=int)
    if after is not None and not 0 < after < 2**63:
        after = None  # not an id: the newest page
    page = approver_mail.project_mail(project.id, after=after)
    return render_template("dashboard/mail.html", project=project, page=page, now=utcnow())


@bp.get(f"/dashboard/p/<id:project_id>/mail/<{BIG_ID}:message_id>")
@login_required
def mail_message(project_id: int, message_id: int):
    project = _project(project_id)
    found = approver_mail.message(project.id, message_id)
    if found is None:
        abort(404)
    response = make_response(
        render_template("dashboard/mail_message.html", project=project, message=found)
    )
    response.headers["Content-Security-Policy"] = FRAMING_PAGE_POLICY
    return response


@bp.get(f"/dashboard/p/<id:project_id>/mail/<{BIG_ID}:message_id>/html")
@login_required
def mail_html(project_id: int, message_id: int):
    project = _project(project_id)
    html = approver_mail.message_html(project.id, message_id)
    if html is None:
        abort(404)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = FRAMED_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/dashboard/p/<id:project_id>/tokens/<token_id>/approvers/<id:position>/resend")
@login_required
def resend_link(project_id: int, token_id: str, position: int):
    project, token = _token(project_id, token_id)
    if not ActionForm().validate_on_submit():
        abort(400)  # the CSRF token is missing or stale
    resent = approver_mail.resend_request(token.pk, position, utcnow())
    if resent.approver is None:
        abort(404)
    if resent.queued:
        flash(f"The link will be sent again to {resent.approver.label} shortly.", "success")
    else:
        flash(f"Nothing sent: {resent.approver.short_name} has nothing left to answer.", "warning")
    return redirect(url_for("dashboard.detail", project_id=project.id, token_id=token.id), code=303)
