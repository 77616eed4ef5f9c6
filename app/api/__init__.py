"""The JSON API for integrations: API keys, no cookies, no CSRF, JSON errors."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from . import openapi, tokens, webhooks  # noqa: E402,F401  (routes register on import)
