"""``waitpoint serve``: gunicorn with the app factory and the timeout scheduler.

Workers are gthread with many threads: a long-poll wait (``/wait``) holds a thread
but no database connection while it sleeps on an ``Event``, and blocking I/O
releases the GIL.

The app is built once, in the master, before the workers fork (gunicorn's
``preload_app``): the workers share its memory (modules, templates, compiled statements)
instead of each building its own, and ``gc.freeze()`` keeps the collector from writing
to those shared pages. The master never serves: it opens no database connection and
starts no thread, and each worker starts its own scheduler after the fork
(``_post_fork``), with connection pools of its own.
"""

from __future__ import annotations

import gc
import logging
import os

from flask import Flask
from gunicorn.app.base import BaseApplication

from ..config import (
    RESERVED_THREADS,
    ConfigError,
    client_timeout,
    env_bool,
    env_int,
    log_format,
    max_waiters,
    threads_per_worker,
)
from ..extensions import db
from . import metrics, requestlog

MAX_REQUEST_LINE = 8190


class WaitpointServer(BaseApplication):
    def __init__(self, options: dict, app: Flask, fallback_url: str | None = None):
        self.options = options
        self.application = app
        self.fallback_url = fallback_url
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        """In the master, once (``preload_app``): the app every worker inherits."""
        app = self.application
        if self.fallback_url:  # URLs built outside a request (mail, webhooks) name this server
            app.config["WAITPOINT_FALLBACK_URL"] = self.fallback_url
        _log_through_gunicorn(app)
        with app.app_context():
            db.engine.dispose()  # the master's own connections (it migrated) stay here
        gc.collect()
        gc.freeze()  # what exists now is shared with the workers: never touched by the GC
        return app


def _post_fork(_server, worker) -> None:
    """In each worker, right after the fork: what must not be shared across processes."""
    from .scheduler import start_scheduler

    app = worker.app.wsgi()
    with app.app_context():
        db.engine.dispose(close=False)  # any inherited connection is the master's to close
    if app.config["WAITPOINT_SCHEDULER"]:
        app.extensions["waitpoint_scheduler"] = start_scheduler(app)


def _log_through_gunicorn(app) -> None:
    """Send the app's log records (sweeps, unexpected errors) to gunicorn's error log."""
    app.logger.handlers = logging.getLogger("gunicorn.error").handlers
    app.logger.setLevel(logging.INFO)
    app.logger.propagate = False
    if app.config["WAITPOINT_LOG_FORMAT"] == "json":
        requestlog.json_everywhere()


def _child_exit(_server, worker) -> None:
    metrics.worker_exited(worker.pid)


def server_options(host: str, port: int, environ: dict | None = None) -> dict:
    environ = os.environ if environ is None else environ
    threads = threads_per_worker(environ)
    waiters = max_waiters(environ)
    if threads < waiters + RESERVED_THREADS:
        raise ConfigError(
            f"WAITPOINT_THREADS ({threads}) must be at least WAITPOINT_MAX_WAITERS ({waiters}) "
            f"+ {RESERVED_THREADS}, so that long polls cannot take every thread"
        )
    client_timeout(environ)  # a malformed value stops the start, not each worker
    return {
        "bind": f"{host}:{port}",
        # gthread, with JSON errors and a time limit for reading requests (http_worker).
        "worker_class": "app.infra.http_worker.WaitpointWorker",
        "workers": env_int(environ, "WAITPOINT_WORKERS", 2, minimum=1),
        "threads": threads,
        "worker_connections": 2000,
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        # The longest request line gunicorn allows: room for ten long tags in a list URL.
        "limit_request_line": MAX_REQUEST_LINE,
        "accesslog": "-" if env_bool(environ, "WAITPOINT_ACCESS_LOG", False) else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "waitpoint",
        # gunicorn's control socket has one fixed path per user; several servers
        # on one host (or a test suite) would fight over it, and nothing here uses it.
        "control_socket_disable": True,
        "preload_app": True,
        "post_fork": _post_fork,
        "child_exit": _child_exit,
        # JSON lines on the error log (where the app logs too), from the master as well.
        "logger_class": (
            requestlog.GunicornJsonLogger
            if log_format(environ) == "json"
            else "gunicorn.glogging.Logger"
        ),
    }


def fallback_url(host: str, port: int) -> str:
    """What URLs built outside a request name when ``WAITPOINT_PUBLIC_URL`` is not set: this
    server as bound (``localhost`` for a wildcard address), right at least on this host."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
