"""Login, logout and the ``login_required`` guard."""

from __future__ import annotations

import hashlib
import hmac
from functools import wraps
from urllib.parse import urlsplit

from flask import g, make_response, redirect, render_template, request, session, url_for

from ..domain import accounts
from ..domain.timeutil import utcnow
from ..extensions import db
from ..models import User
from . import bp
from .forms import LoginForm

# The project used last, kept in the session through logins and logouts: /dashboard/
# opens it (if the user is still one of its members). Only an id; no user's data.
LAST_PROJECT = "project_id"


def session_key(user: User) -> str:
    """Ties a session to this user record: a deleted user's cookie never fits a new user
    who gets the same id, and a new password ends every older session."""
    return hashlib.sha256(f"{user.id}:{user.email}:{user.password_hash}".encode()).hexdigest()


def current_user() -> User | None:
    user_id = session.get("user_id")
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not hmac.compare_digest(session.get("user_key", ""), session_key(user)):
        return None
    return user


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.user = current_user()
        if g.user is None:
            return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    # Browsers read "/\\host" as "//host": refuse backslashes and control characters too.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("dashboard.home")


def _fresh_session() -> None:
    last = session.get(LAST_PROJECT)
    session.clear()
    if isinstance(last, int):
        session[LAST_PROJECT] = last


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = accounts.log_in(
            form.email.data, form.password.data, request.remote_addr or "?", utcnow()
        )
        if result.user is not None:
            _fresh_session()  # no fixation
            session["user_id"] = result.user.id
            session["user_key"] = session_key(result.user)
            return redirect(_safe_next(request.args.get("next")), code=303)
        if result.retry_after is not None:
            minutes = max(1, round(result.retry_after.total_seconds() / 60))
            form.form_errors.append(f"Too many failed logins. Try again in {minutes} minute(s).")
            status = 429
        else:
            form.form_errors.append("Wrong email or password.")
            status = 401
    elif request.method == "POST":
        status = 400
    response = make_response(render_template("dashboard/login.html", form=form), status)
    if status == 429:
        response.headers["Retry-After"] = str(int(result.retry_after.total_seconds()) + 1)
    return response


@bp.post("/logout")
def logout():
    _fresh_session()
    return redirect(url_for("dashboard.login"), code=303)
