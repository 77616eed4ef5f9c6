"""Rate limits on the API and the callback URLs, counted where every process sees them.

- A request with a valid API key counts against that key (``WAITPOINT_RATE_LIMIT_API_KEY``).
- A request refused for its API key (401) counts against the client address
  (``WAITPOINT_RATE_LIMIT_API_KEY_FAILURES``): past that limit such requests get 429
  instead of 401, while valid keys from the same address go on working.
- A request to a callback URL, as a JSON POST or in a browser (the approval page, its
  probe and its form), counts against the client address (``WAITPOINT_RATE_LIMIT_CALLBACK``).
- A callback URL that is not valid (404: a wrong signature or an unknown token) counts
  against the client address once more (``WAITPOINT_RATE_LIMIT_CALLBACK_FAILURES``): past
  that limit, 429 instead of 404.

A 429 is the API's JSON error, or on the approval pages (chosen by blueprint: the page's
GET lives under ``/api/`` too) a short HTML page; both with ``Retry-After``.

IPv6 clients count per /64 network, which one subscriber usually holds whole.

Counters live in a storage of ``limits`` (the library under Flask-Limiter) on the
database (``ratelimit_storage``). Flask-Limiter itself resolves its decorated and
blueprint limits on every request: in a bare Flask app with in-memory counters, its hooks
with two limits cost ~90 µs a request, a hit through ``limits`` ~8 µs. When the storage
fails, requests go through and a warning is logged at most once a minute per process: a
broken counter never refuses or fails a request.

A process does not write the shared counter at every request: it takes a *lease*, a
number of requests, by adding it to the counter in one write, and counts the requests it
lets through against the lease in memory until it is used up or the window ends. A
client's first lease in a window is one request; each next one doubles while the client
keeps coming, up to 1/50 of the limit (at most 50; always 1 for a limit under 100) and
never more than a quarter of what is left of the limit. Together the processes never let
more than the limit through; a client may be refused a little early while other processes
hold unused parts of their leases. (A write per request cost a retrieve ~0.25 ms of its
~0.9 ms of server CPU.)
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time

from flask import Flask, current_app, make_response, render_template, request
from limits import RateLimitItem
from limits.storage import MemoryStorage, Storage
from sqlalchemy import event
from werkzeug.exceptions import TooManyRequests

from ..config import parse_rate_limit

API_KEY = "api-key"
API_KEY_FAILURES = "api-key-failures"
CALLBACK = "callback"
CALLBACK_FAILURES = "callback-failures"
# Each limit's setting, and the message of its 429 ("<subject>: ...").
SETTINGS = {
    API_KEY: "WAITPOINT_RATE_LIMIT_API_KEY",
    API_KEY_FAILURES: "WAITPOINT_RATE_LIMIT_API_KEY_FAILURES",
    CALLBACK: "WAITPOINT_RATE_LIMIT_CALLBACK",
    CALLBACK_FAILURES: "WAITPOINT_RATE_LIMIT_CALLBACK_FAILURES",
}
MESSAGES = {
    API_KEY: "API key: too many requests with this key",
    API_KEY_FAILURES: "Authorization: too many requests with an invalid API key from this address",
    CALLBACK: "callback URL: too many requests from this address",
    CALLBACK_FAILURES: "callback URL: too many invalid callback URLs from this address",
}
# The callback URL as a JSON POST, and in a browser: the page, its probe, its form; and
# an approver's personal link (the same page, probe and form).
CALLBACK_ENDPOINTS = frozenset(
    {
        "api.callback",
        "approvals.page",
        "approvals.probe",
        "approvals.decide",
        "approvals.approver_page",
        "approvals.approver_probe",
        "approvals.approver_decide",
    }
)
_EXTENSION = "waitpoint_ratelimit"
_QUIET = 60.0  # seconds between two warnings about a failing storage (per process)
LEASE_SHARE = 50  # the largest lease is 1/50 of a limit...
MAX_LEASE = 50  # ...and at most this many requests
_PURGE_LEASES = 10_000  # past this many leases held, the expired ones are dropped


def lease_size(item: RateLimitItem) -> int:
    """The most requests one write to the shared counter covers for this limit."""
    return max(1, min(item.amount // LEASE_SHARE, MAX_LEASE))


class RateLimited(TooManyRequests):
    """A limit was reached: 429, to be retried after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Limiter:
    """The app's limits, counted in one storage."""

    def __init__(self, storage: Storage, limits: dict[str, tuple[RateLimitItem, ...]], logger):
        self.storage = storage
        self.limits = limits
        self._logger = logger
        self._quiet_until = 0.0
        # Counter key -> [end of its window (epoch seconds), requests left in the lease,
        # size of the next lease].
        self._leases: dict[str, list[float]] = {}
        self._purge_at = _PURGE_LEASES  # doubles with what is left, so purging stays rare
        self._lock = threading.Lock()

    def hit(self, rule: str, identity: str) -> None:
        """Count a request against ``rule`` for ``identity``; ``RateLimited`` past the limit."""
        for item in self.limits[rule]:
            key = item.key_for(rule, identity)
            covered, size = self._from_lease(key)
            if covered:
                continue
            try:
                granted, window_ends = self._new_lease(item, key, size)
            except Exception as exc:
                self._storage_failed(exc)
                return
            if not granted:
                retry_after = max(1, math.ceil(window_ends - time.time()))
                raise RateLimited(MESSAGES[rule], retry_after)

    def _from_lease(self, key: str) -> tuple[bool, int]:
        """Whether a lease of this process covers the request; if not, the size of the
        lease to take (1 in a new window)."""
        with self._lock:
            lease = self._leases.get(key)
            if lease is None or time.time() >= lease[0]:
                self._leases.pop(key, None)
                return False, 1
            if lease[1] >= 1:
                lease[1] -= 1
                return True, 0
            return False, int(lease[2])

    def _new_lease(self, item: RateLimitItem, key: str, size: int) -> tuple[bool, float]:
        """Take a lease from the shared counter: whether this request may go, and when the
        window ends."""
        size = min(size, lease_size(item))
        count, window_ends = _incr_with_expiry(self.storage, key, item.get_expiry(), size)
        granted = max(0, min(size, item.amount - (count - size)))
        if granted:
            following = max(1, min(lease_size(item), 2 * size, (item.amount - count) // 4))
            with self._lock:
                if len(self._leases) >= self._purge_at:
                    now = time.time()
                    self._leases = {k: v for k, v in self._leases.items() if v[0] > now}
                    self._purge_at = max(_PURGE_LEASES, 2 * len(self._leases))
                lease = self._leases.get(key)
                if lease is not None and lease[0] == window_ends:
                    lease[1] += granted - 1  # another thread's lease of the same window
                    lease[2] = following
                else:  # a lease belongs to the window it was taken in, never to the next
                    self._leases[key] = [window_ends, granted - 1, following]
        return granted > 0, window_ends

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + _QUIET
            # The message's first line only: no statement, nor any value of one (key hashes).
            first_line = (str(exc).splitlines() or [""])[0][:200]
            self._logger.warning(
                "rate limits not applied: their storage failed (%s: %s)",
                type(exc).__name__,
                first_line,
            )


def _incr_with_expiry(storage: Storage, key: str, expiry: float, amount: int):
    """The count after adding ``amount``, and the end of its window: from one statement in
    the app's own storages, from two calls in ``limits``' in-memory one (one process)."""
    if hasattr(storage, "incr_with_expiry"):
        return storage.incr_with_expiry(key, expiry, amount)
    return storage.incr(key, expiry, amount), storage.get_expiry(key)


def address_key(address: str | None) -> str:
    """What counts as one client: an IPv4 address, or an IPv6 /64 (one subscriber's)."""
    if not address or ":" not in address:
        return address or "unknown"
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def count_api_key(key_hash: str) -> None:
    """Count a request with a valid API key, by its hash (the key is never stored)."""
    limiter = current_app.extensions.get(_EXTENSION)
    if limiter is not None:
        limiter.hit(API_KEY, key_hash)


def _count_callback_request() -> None:
    if request.endpoint in CALLBACK_ENDPOINTS:
        current_app.extensions[_EXTENSION].hit(CALLBACK, address_key(request.remote_addr))


def _count_failure(response):
    status = response.status_code
    if status == 401 and request.blueprint == "api":
        rule = API_KEY_FAILURES
    elif status == 404 and request.endpoint in CALLBACK_ENDPOINTS:
        rule = CALLBACK_FAILURES
    else:
        return response
    try:
        current_app.extensions[_EXTENSION].hit(rule, address_key(request.remote_addr))
    except RateLimited as exc:
        return too_many_requests(exc)
    return response


def too_many_requests(exc: RateLimited):
    from ..api.errors import error_response
    from .security import add_security_headers

    if request.blueprint == "approvals":
        minutes = math.ceil(exc.retry_after / 60)
        wait = f"{exc.retry_after} seconds" if exc.retry_after < 120 else f"{minutes} minutes"
        body = render_template("errors/rate_limited.html", wait=wait)
        response = add_security_headers(make_response(body, 429))
    else:
        response = error_response(429, f"{exc.message}; retry after {exc.retry_after} s")
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _storage_for(app: Flask) -> Storage:
    from ..extensions import db
    from ..infra.database import sqlite_file
    from .ratelimit_storage import PostgresCounters, SqliteCounters

    with app.app_context():
        engine = db.engine
    url = engine.url
    database = sqlite_file(url.database)
    if url.get_backend_name() == "postgresql":
        storage = PostgresCounters(url)
    elif database is not None:
        storage = SqliteCounters(f"{database}-ratelimit")
    else:
        return MemoryStorage()  # an in-memory database lives in one process anyway
    # The counters' connections go when the app's engine is disposed (at the end of a test,
    # and by `waitpoint serve` before its workers start).
    event.listen(engine, "engine_disposed", lambda _engine: storage.close())
    return storage


def init_app(app: Flask) -> None:
    if not app.config["WAITPOINT_RATE_LIMITS"]:
        return
    limits = {rule: parse_rate_limit(name, app.config[name]) for rule, name in SETTINGS.items()}
    app.extensions[_EXTENSION] = Limiter(_storage_for(app), limits, app.logger)
    app.before_request(_count_callback_request)
    app.after_request(_count_failure)
    app.register_error_handler(RateLimited, too_many_requests)
