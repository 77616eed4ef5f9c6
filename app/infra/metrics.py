"""Prometheus metrics at ``GET /metrics``, right under several gunicorn workers.

``waitpoint serve`` runs one app per worker process. There the instruments live in
prometheus_client's multiprocess mode: each process writes its values to memory-mapped
files in one directory that ``serve`` makes fresh at start (``use_multiprocess_dir``),
and a scrape, whichever worker answers it, adds up every process's files. Elsewhere
(tests, the flask CLI) one process keeps them in a private registry.

What is a fact of the database rather than of a process (how many tokens wait, how late
the sweep is) is read at scrape time (``DatabaseFacts``), so every worker of every host
tells the same; a database that does not answer makes ``waitpoint_database_up`` 0, never
the scrape fail.

Instruments are built at their first use in a process, not on import: the value class
is chosen then, and ``serve``'s master process (which built an app to migrate) has by
then set the directory, or has never built any.
"""

from __future__ import annotations

import atexit
import hmac
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from time import perf_counter

import prometheus_client
from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import Integer, bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from ..domain.timeutil import utcnow
from ..extensions import db
from ..models import UTCDateTime

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text format generate_latest writes (what Prometheus 2 and 3 both read).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # the route label of a request no URL rule matched (404, 405)

_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Instruments:
    """Every instrument of one process; ``registry`` is None in multiprocess mode."""

    def __init__(self, registry: CollectorRegistry | None):
        r = registry
        self.requests = Counter(
            "waitpoint_http_requests_total",
            "HTTP requests answered, by method, route (the URL rule) and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "waitpoint_http_request_duration_seconds",
            "Time from a request's arrival to its response, by method and route.",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.created = Counter(
            "waitpoint_tokens_created_total",
            "Tokens created (an idempotent replay is not a new token), by project id.",
            ["project"],
            registry=r,
        )
        self.completed = Counter(
            "waitpoint_tokens_completed_total",
            "Tokens completed, by project id and how (api, callback, page, dashboard).",
            ["project", "source"],
            registry=r,
        )
        self.timed_out = Counter(
            "waitpoint_tokens_timed_out_total",
            "Tokens timed out, by project id and by what (sweep, request, operator).",
            ["project", "by"],
            registry=r,
        )
        self.sweep_duration = Histogram(
            "waitpoint_sweep_duration_seconds",
            "Time one timeout sweep took (every process with a scheduler sweeps).",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.sweep_failures = Counter(
            "waitpoint_sweep_failures_total",
            "Timeout sweeps that failed with an error (the next one tries again).",
            registry=r,
        )
        self.waiters = Gauge(
            "waitpoint_long_poll_waiters",
            "Long polls (/wait) being held now, all processes together.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.waits_refused = Counter(
            "waitpoint_long_poll_refused_total",
            "Long polls answered at once because the process held its maximum of waits.",
            registry=r,
        )
        self.writer_wait = Histogram(
            "waitpoint_sqlite_writer_wait_seconds",
            "SQLite: time a write transaction waited for its turn in the writer queue.",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.webhook_attempts = Counter(
            "waitpoint_webhook_attempts_total",
            "Webhook sends, by result: success, http_error, timeout, connection_error, refused.",
            ["result"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "waitpoint_webhook_attempt_duration_seconds",
            "Time one webhook send took, from the address lookup to the answer read.",
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.webhooks_failed = Counter(
            "waitpoint_webhook_deliveries_failed_total",
            "Webhook deliveries given up after their last retry.",
            registry=r,
        )
        self.votes = Counter(
            "waitpoint_approver_votes_total",
            "Votes of named approvers recorded, by decision (approved, rejected).",
            ["decision"],
            registry=r,
        )
        self.mail = Counter(
            "waitpoint_mail_attempts_total",
            "Emails to approvers tried, by kind (request, reminder, closed) and result (sent, "
            "retry, failed).",
            ["kind", "result"],
            registry=r,
        )
        # Label children by their values: a dict lookup per request instead of labels().
        self._http: dict[tuple[str, str, str], tuple] = {}

    def http(self, method: str, route: str, status: str, seconds: float) -> None:
        children = self._http.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, status),
                self.latency.labels(method, route),
            )
            self._http[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


_instruments: _Instruments | None = None
_registry: CollectorRegistry | None = None
_build_lock = threading.Lock()


def _get() -> _Instruments:
    built = _instruments
    return built if built is not None else _build()


def _build() -> _Instruments:
    global _instruments, _registry
    with _build_lock:
        if _instruments is None:
            prometheus_client.disable_created_metrics()  # the same series in either mode
            _registry = None if multiprocess_dir() else CollectorRegistry(auto_describe=False)
            _instruments = _Instruments(_registry)
        return _instruments


# -- what the rest of the app reports --------------------------------------------


def observe_request(method: str, route: str, status: str, seconds: float) -> None:
    """One answered request (``requestlog``'s middleware calls this)."""
    _get().http(method if method in _METHODS else "OTHER", route, status, seconds)


def token_created(project_id: int) -> None:
    """A new token (not an idempotent replay), after its transaction committed."""
    _get().created.labels(str(project_id)).inc()


def token_completed(project_id: int, source: str) -> None:
    """This request completed the token (``applied``); ``source`` as in its completion."""
    _get().completed.labels(str(project_id), source).inc()


def tokens_timed_out(count_by_project: Mapping[int, int], by: str = "sweep") -> None:
    """Tokens timed out in one committed transaction: ``{project_id: how many}``.

    ``by``: ``sweep`` (``expire_due``), ``request`` (a read or a completion that found
    the token past its deadline and stored the time-out itself), ``operator`` ("time
    out now" on the dashboard).
    """
    instruments = _get()
    for project_id, count in count_by_project.items():
        if count:
            instruments.timed_out.labels(str(project_id), by).inc(count)


@contextmanager
def sweep_timer():
    """Around one sweep: its duration, and a failure if it raised."""
    started = perf_counter()
    try:
        yield
    except BaseException:
        _get().sweep_failures.inc()
        raise
    finally:
        _get().sweep_duration.observe(perf_counter() - started)


def waiter_entered() -> None:
    _get().waiters.inc()


def waiter_left() -> None:
    _get().waiters.dec()


def wait_refused() -> None:
    _get().waits_refused.inc()


def writer_waited(seconds: float) -> None:
    _get().writer_wait.observe(seconds)


def webhook_attempted(result: str, seconds: float) -> None:
    """One webhook send (``infra.webhooks``): its result and how long it took."""
    instruments = _get()
    instruments.webhook_attempts.labels(result).inc()
    instruments.webhook_duration.observe(seconds)


def webhook_failed() -> None:
    _get().webhooks_failed.inc()


def approver_voted(approved: bool) -> None:
    _get().votes.labels("approved" if approved else "rejected").inc()


def mail_attempted(kind: str, result: str) -> None:
    _get().mail.labels(kind, result).inc()


# -- several processes -------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def use_multiprocess_dir() -> str:
    """``waitpoint serve``'s master, before it forks: a fresh directory for the workers.

    A new temporary directory for each server (``TMPDIR`` chooses where), so that two
    servers never mix their files and a restart starts from zero; removed when the
    master exits.
    """
    global _instruments, _registry
    path = tempfile.mkdtemp(prefix="waitpoint-metrics-")
    os.environ[MULTIPROC_ENV] = path
    # prometheus_client chose its value class on import, before the directory was set.
    prometheus_client.values.ValueClass = prometheus_client.values.get_value_class()
    _instruments = _registry = None
    master = os.getpid()
    # Forked workers inherit the handler: only the master removes the directory.
    atexit.register(lambda: os.getpid() == master and shutil.rmtree(path, ignore_errors=True))
    return path


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: drop the dead worker's live gauges (its counters stay)."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(pid, path)


# -- scraping ------------------------------------------------------------------------

# Per project, the count is a range of ix_tokens_project_status_pk: it reads the waiting
# tokens only, whatever else a project has stored.
_WAITING_BY_PROJECT = text(
    "SELECT p.id, p.name, (SELECT count(*) FROM tokens t"
    " WHERE t.project_id = p.id AND t.status = 'WAITING') FROM projects p"
)
# Past their deadline and not yet swept: a range of the partial ix_tokens_waiting_deadline.
_OVERDUE = (
    text(
        "SELECT count(*) AS overdue, min(timeout_at) AS oldest FROM tokens"
        " WHERE status = 'WAITING' AND timeout_at IS NOT NULL AND timeout_at <= :now"
    )
    .bindparams(bindparam("now", type_=UTCDateTime))
    .columns(overdue=Integer, oldest=UTCDateTime)
)
# Webhook deliveries still to send, and the longest any has been due: a range of the
# partial ix_deliveries_pending_due (pending ones only).
_PENDING_DELIVERIES = text(
    "SELECT count(*) AS pending, min(next_attempt_at) AS oldest FROM deliveries"
    " WHERE status = 'pending'"
).columns(pending=Integer, oldest=UTCDateTime)


class DatabaseFacts:
    """Gauges read from the database at scrape time, right across workers and hosts."""

    def collect(self):
        up = GaugeMetricFamily(
            "waitpoint_database_up", "1 if this scrape could read the database, else 0."
        )
        try:
            facts = self._read()
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from facts

    @staticmethod
    def _read() -> list:
        now = utcnow()
        try:
            projects = db.session.execute(_WAITING_BY_PROJECT).all()
            overdue, oldest = db.session.execute(_OVERDUE, {"now": now}).one()
            pending, pending_since = db.session.execute(_PENDING_DELIVERIES).one()
        finally:
            db.session.rollback()
        waiting = GaugeMetricFamily(
            "waitpoint_tokens_waiting",
            "Tokens stored as WAITING, by project id (overdue ones until the sweep ends them).",
            labels=["project"],
        )
        info = GaugeMetricFamily(
            "waitpoint_project_info",
            "Always 1: a project's id and name.",
            labels=["project", "name"],
        )
        for project_id, name, count in projects:
            waiting.add_metric([str(project_id)], count)
            info.add_metric([str(project_id), name], 1)
        overdue_family = GaugeMetricFamily(
            "waitpoint_tokens_overdue",
            "Tokens past their deadline that the sweep has not timed out yet.",
            value=overdue,
        )
        lag = GaugeMetricFamily(
            "waitpoint_sweep_lag_seconds",
            "How long the most overdue waiting token has been past its deadline (0 if none).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )
        deliveries = GaugeMetricFamily(
            "waitpoint_webhook_deliveries_pending",
            "Webhook deliveries not yet delivered nor given up (due now or retrying later).",
            value=pending,
        )
        delivery_lag = GaugeMetricFamily(
            "waitpoint_webhook_delivery_lag_seconds",
            "How long the longest-due pending webhook delivery has been due (0 if none).",
            value=max(0.0, (now - pending_since).total_seconds()) if pending_since else 0.0,
        )
        return [waiting, info, overdue_family, lag, deliveries, delivery_lag]


class _Scrape:
    """What one scrape reads: the process (or every process's files), then the database."""

    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def exposition() -> bytes:
    _get()  # build the instruments, so that a first scrape lists them (at zero) too
    path = multiprocess_dir()
    process = MultiProcessCollector(None, path) if path else _registry
    return generate_latest(_Scrape(process, DatabaseFacts()))


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    token = current_app.config["WAITPOINT_METRICS_TOKEN"]
    if token is not None and not _bearer_matches(request.headers.get("Authorization"), token):
        return Response(
            "a bearer token is required (Authorization: Bearer <WAITPOINT_METRICS_TOKEN>)\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"},
        )
    return Response(exposition(), 200, {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def init_app(app: Flask) -> None:
    if app.config["WAITPOINT_METRICS"]:
        app.register_blueprint(bp)
