"""The operator dashboard: login, tokens by status and tag (live), detail and actions,
webhooks, and the mail to named approvers."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from . import auth, mail, views, webhooks  # noqa: E402,F401  (routes register on import)
