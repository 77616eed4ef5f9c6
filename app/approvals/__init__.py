"""Approval pages: the callback URL opened in a browser, for approvers.

Public (the URL's signature is the permission), CSRF on for the decision form,
strict security headers. GET never changes state: mail scanners and link
previews open every link in a message.
"""

from flask import Blueprint

bp = Blueprint("approvals", __name__)

from . import views  # noqa: E402,F401  (routes register on import)
