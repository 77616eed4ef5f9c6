"""Every API error is ``{"error": "..."}`` with a status code, through one handler."""

from __future__ import annotations

from flask import Request, current_app, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str):
    response = jsonify(error=message)
    response.status_code = status
    return response


# Blueprints whose every answer is JSON; the approval pages answer HTML, though their
# GET shares the callback URL's path under /api/.
JSON_BLUEPRINTS = {"api", "health", "metrics"}


def wants_json(req: Request) -> bool:
    if req.blueprint is not None:
        return req.blueprint in JSON_BLUEPRINTS
    # No route matched (404, 405): the path tells.
    return req.path.startswith("/api/") or req.path in ("/healthz", "/metrics")


def http_error_as_json(exc: HTTPException):
    messages = {
        404: "not found",
        405: f"method {request.method} is not allowed here",
        413: "request body is too large",
    }
    message = messages.get(exc.code, (exc.description or exc.name).rstrip("."))
    if exc.code == 413:
        message = f"request body is too large (limit {request.max_content_length} bytes)"
    response = error_response(exc.code or 500, message)
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def validation_message(exc: ValidationError) -> tuple[int, str]:
    """The first problem of a pydantic error, as ``(status, "field: message")``."""
    errors = exc.errors(include_url=False)
    # A union (a tag or a list of tags) reports one error per branch: the deepest one is
    # about the branch the client meant.
    first = max(
        (e for e in errors if e["loc"][:1] == errors[0]["loc"][:1]), key=lambda e: len(e["loc"])
    )
    # Name the field as the client sent it: the first part of the location (pydantic adds
    # the union branch it tried, such as "constrained-str", after it).
    field = str(first["loc"][0]) if first["loc"] else "body"
    if field == "approvers" and len(first["loc"]) >= 3:  # a list of objects: which one
        field = f"approvers[{first['loc'][1]}].{first['loc'][2]}"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "is not a known field"
    status = 422 if first["type"] == "too_many_tags" else 400
    return status, f"{field}: {message}"


def log_unexpected(exc: Exception):
    # The route, not the path: a callback URL's path holds its secret signature.
    route = request.url_rule.rule if request.url_rule else "unmatched"
    current_app.logger.exception("unhandled error on %s %s", request.method, route)
    return error_response(500, "internal server error")
