"""Dashboard: a project's webhook endpoints (add, disable, rotate, remove) and their
delivery logs, with Redeliver. The secret is shown once, on the page the action
redirects to, and never again."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ..domain import webhooks
from ..domain.stored import ID_PREFIX
from ..domain.timeutil import utcnow
from ..extensions import db
from ..models import Token, WebhookEndpoint
from . import bp
from .auth import login_required
from .forms import ActionForm, EndpointForm
from .views import _project

BIG_ID = "id(max=9223372036854775807)"  # deliveries have 64-bit ids
SHOWN_SECRET = "webhook_secret_once"  # the session key holding a secret until it is shown


def endpoint_types(endpoint: WebhookEndpoint) -> str:
    named = webhooks.named_types(endpoint)
    return ", ".join(named) if named else "all events"


def _endpoint(project_id: int, endpoint_id: int) -> tuple:
    project = _project(project_id)
    endpoint = webhooks.endpoint(project.id, endpoint_id)
    if endpoint is None:
        abort(404)
    return project, endpoint


def _checked() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)  # the CSRF token is missing or stale


def _to_list(project_id: int):
    return redirect(url_for("dashboard.webhooks", project_id=project_id), code=303)


def _show_once(endpoint: WebhookEndpoint, secret: str) -> None:
    """Kept in the session only until the next page shows it (then popped)."""
    session[SHOWN_SECRET] = {"endpoint": endpoint.id, "url": endpoint.url, "secret": secret}


@bp.get("/dashboard/p/<id:project_id>/webhooks", endpoint="webhooks")
@login_required
def webhooks_page(project_id: int, form: EndpointForm | None = None, status: int = 200):
    project = _project(project_id)
    shown = session.pop(SHOWN_SECRET, None)
    if shown and webhooks.endpoint(project.id, shown.get("endpoint")) is None:
        shown = None  # another project's (or removed since): not for this page
    context = {
        "project": project,
        "endpoints": webhooks.endpoints(project.id),
        "form": form or EndpointForm(),
        "action_form": ActionForm(),
        "shown": shown,
        "endpoint_types": endpoint_types,
        "now": utcnow(),
    }
    return render_template("dashboard/webhooks.html", **context), status


@bp.post("/dashboard/p/<id:project_id>/webhooks")
@login_required
def add_endpoint(project_id: int):
    project = _project(project_id)
    form = EndpointForm()
    if not form.validate_on_submit():
        return webhooks_page(project.id, form=form, status=422)
    endpoint, secret = webhooks.create_endpoint(
        project.id, form.url.data, form.chosen_types(), utcnow()
    )
    _show_once(endpoint, secret)
    flash(f"Endpoint added: {endpoint.url}", "success")
    return _to_list(project.id)


@bp.post("/dashboard/p/<id:project_id>/webhooks/<id:endpoint_id>/<any(enable,disable):change>")
@login_required
def enable_endpoint(project_id: int, endpoint_id: int, change: str):
    project, endpoint = _endpoint(project_id, endpoint_id)
    _checked()
    enabled = change == "enable"
    reason = f"disabled by {g.user.email}"
    webhooks.set_enabled(project.id, endpoint.id, enabled, reason=reason)
    flash(f"{'Enabled' if enabled else 'Disabled'}: {endpoint.url}", "success")
    return _to_list(project.id)


@bp.post("/dashboard/p/<id:project_id>/webhooks/<id:endpoint_id>/rotate-secret")
@login_required
def rotate_secret(project_id: int, endpoint_id: int):
    project, endpoint = _endpoint(project_id, endpoint_id)
    _checked()
    secret = webhooks.rotate_secret(project.id, endpoint.id)
    if secret is None:  # removed in between
        abort(404)
    _show_once(endpoint, secret)
    flash(f"New secret for {endpoint.url}; the old one no longer signs.", "success")
    return _to_list(project.id)


@bp.post("/dashboard/p/<id:project_id>/webhooks/<id:endpoint_id>/remove")
@login_required
def remove_endpoint(project_id: int, endpoint_id: int):
    project, endpoint = _endpoint(project_id, endpoint_id)
    _checked()
    url = endpoint.url
    if webhooks.remove_endpoint(project.id, endpoint.id):
        flash(f"Removed: {url}", "success")
    return _to_list(project.id)


@bp.get("/dashboard/p/<id:project_id>/webhooks/<id:endpoint_id>")
@login_required
def endpoint_deliveries(project_id: int, endpoint_id: int):
    project, endpoint = _endpoint(project_id, endpoint_id)
    return render_template(
        "dashboard/webhook_deliveries.html",
        project=project,
        endpoint=endpoint,
        endpoint_types=endpoint_types,
        deliveries=webhooks.delivery_log(project.id, endpoint_id=endpoint.id),
        action_form=ActionForm(),
        back="endpoint",
    )


@bp.post(f"/dashboard/p/<id:project_id>/deliveries/<{BIG_ID}:delivery_id>/redeliver")
@login_required
def redeliver(project_id: int, delivery_id: int):
    project = _project(project_id)
    found = webhooks.delivery(project.id, delivery_id)
    if found is None:
        abort(404)
    _checked()
    webhooks.redeliver(project.id, found.id, utcnow())
    flash(f"Delivery {found.id} will be sent again shortly.", "success")
    if request.form.get("back") == "endpoint" and found.endpoint_id is not None:
        target = url_for(
            "dashboard.endpoint_deliveries", project_id=project.id, endpoint_id=found.endpoint_id
        )
    else:
        public_id = db.session.scalar(select(Token.public_id).where(Token.pk == found.token_pk))
        target = url_for("dashboard.detail", project_id=project.id, token_id=ID_PREFIX + public_id)
    return redirect(target, code=303)
