"""Request ids, one JSON log line per request, and the request metrics.

A WSGI middleware around the app sees every response, errors included: it gives each
request an id (the caller's ``X-Request-ID`` when it is sane, else a new one), echoes
it in the response, times the request, and on the way out counts it (``metrics``) and,
with ``WAITPOINT_LOG_FORMAT=json``, logs one line about it.

What a line says is chosen, never copied: the route is the URL rule
(``/api/v1/waitpoints/tokens/<token_id>/callback/<signature>``), never the path, whose
signature is a secret; no query string, header, cookie, body or output. The token's
public id is logged (it is not a secret; the signature is), the project as its id.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from time import perf_counter

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from gunicorn.glogging import Logger as GunicornLogger

from . import metrics

REQUEST_ID = "waitpoint.request_id"  # where the id is kept in the WSGI environ
_SANE_ID = re.compile(r"[!-~]{1,128}")  # printable ASCII, no spaces, at most 128
_PUBLIC_TOKEN_ID = re.compile(r"waitpoint_[a-z0-9]{1,32}")


def request_id() -> str | None:
    """The current request's id (for a log line or an error page)."""
    return request.environ.get(REQUEST_ID) if has_request_context() else None


def _incoming_id(value: str | None) -> str | None:
    return value if value is not None and _SANE_ID.fullmatch(value) else None


class RequestObserver:
    """The WSGI middleware: ``app.wsgi_app = RequestObserver(app, app.wsgi_app)``."""

    def __init__(self, app: Flask, wsgi_app):
        self.wsgi_app = wsgi_app
        self.logger = app.logger
        self.count = app.config["WAITPOINT_METRICS"]
        self.log_json = app.config["WAITPOINT_LOG_FORMAT"] == "json"

    def __call__(self, environ, start_response):
        started = perf_counter()
        rid = _incoming_id(environ.get("HTTP_X_REQUEST_ID")) or os.urandom(16).hex()
        environ[REQUEST_ID] = rid
        seen: list = []

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-ID", rid))
            # Flask answers inside its request context: read what the line needs now.
            seen[:] = [status[:3], _facts(self.log_json) if has_request_context() else None]
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            self._finished(environ, seen, perf_counter() - started)

    def _finished(self, environ, seen: list, seconds: float) -> None:
        status, facts = seen if seen else ("500", None)
        route = facts["route"] if facts else metrics.UNMATCHED
        method = environ.get("REQUEST_METHOD", "")
        if self.count:
            metrics.observe_request(method, route, status, seconds)
        if self.log_json:
            fields = {
                "request_id": environ[REQUEST_ID],
                "method": method[:16],
                "route": route,
                "status": int(status),
                "duration_ms": round(seconds * 1000, 2),
            }
            if facts:
                fields.update(facts)
            logger = self.logger
            if logger.isEnabledFor(logging.INFO):
                # As logger.info would, without its walk up the stack for a caller.
                extra = {"request_fields": fields}
                record = logger.makeRecord(
                    logger.name, logging.INFO, __file__, 0, "request", (), None, extra=extra
                )
                logger.handle(record)


def _facts(full: bool) -> dict:
    rule = request.url_rule
    facts = {"route": rule.rule if rule is not None else metrics.UNMATCHED}
    if not full:
        return facts
    facts["remote_addr"] = request.remote_addr
    view_args = request.view_args or {}
    project = g.get("project_id", view_args.get("project_id"))
    if project is not None:
        facts["project"] = project
    token = view_args.get("token_id")
    if isinstance(token, str) and _PUBLIC_TOKEN_ID.fullmatch(token):
        facts["token"] = token
    return facts


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the request's fields.

    A record logged while a request is handled (an unexpected error, say) carries that
    request's id; a traceback is one string field, so a record stays one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, "request_fields", None)
        if fields:
            entry.update(fields)
        elif has_request_context():
            entry["request_id"] = request.environ.get(REQUEST_ID)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it per test)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


_json_handler = _StderrHandler()
_json_handler.setFormatter(JsonFormatter())


class GunicornJsonLogger(GunicornLogger):
    """gunicorn's logger with its error log (where the app logs too) as JSON lines."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())


def json_everywhere() -> None:
    """In a ``waitpoint serve`` worker: records of other loggers (APScheduler's, say),
    which reach the root logger, as JSON lines too."""
    logging.getLogger().handlers = [_json_handler]


def json_migration_logging() -> None:
    """Before the CLI migrates: alembic's lines as JSON, instead of alembic.ini's text."""
    alembic = logging.getLogger("alembic")
    alembic.handlers = [_json_handler]
    alembic.setLevel(logging.INFO)
    alembic.propagate = False


def init_app(app: Flask) -> None:
    app.wsgi_app = RequestObserver(app, app.wsgi_app)
    if app.config["WAITPOINT_LOG_FORMAT"] == "json":
        # Outside ``waitpoint serve`` (which hands the logger to gunicorn's error log):
        # JSON lines on stderr instead of Flask's text handler.
        logger = app.logger
        logger.setLevel(logging.INFO)
        logger.removeHandler(default_handler)
        if _json_handler not in logger.handlers:
            logger.addHandler(_json_handler)
