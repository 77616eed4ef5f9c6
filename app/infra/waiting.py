"""Long-poll waiting: requests that block until a token leaves WAITING.

One ``WaitHub`` per process holds an ``Event`` per waited-on token. It is woken

- in this process, by the ``token_decided`` signal that the lifecycle sends after
  every commit that decided tokens;
- from other processes, by one listener thread: on PostgreSQL it ``LISTEN``s to
  the channel the lifecycle ``NOTIFY``s in the deciding transaction; on SQLite it
  polls ``PRAGMA data_version`` (which changes when another connection commits)
  and only then asks, in one query, which of the waited-on tokens were decided.

So the cost is one cheap query per tick per process, never one per waiter.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from ..domain.lifecycle import NOTIFY_CHANNEL, token_decided
from ..domain.timeutil import utcnow
from ..extensions import db
from ..models import WAITING, Token

if TYPE_CHECKING:
    from ..domain.stored import StoredToken
from . import metrics
from .database import listening_connection

log = logging.getLogger(__name__)

SQLITE_POLL_SECONDS = 0.02
DISCONNECT_CHECK_SECONDS = 1.0


class WaitHub:
    def __init__(self, app: Flask, capacity: int):
        self.app = app
        self.capacity = capacity
        self._lock = threading.Lock()
        # One event per waiting request (never shared, so clearing one loses no wake-up).
        self._events: dict[int, set[threading.Event]] = {}
        self._active = 0
        self._listener: threading.Thread | None = None
        self.stopping = threading.Event()
        token_decided.connect(self._on_decided, sender=app, weak=False)

    def close(self) -> None:
        """Stop the listener thread (tests; a server process simply exits)."""
        self.stopping.set()
        # From every sender: disconnected from one, blinker would still hold the hub (and its
        # app) for the life of the process.
        token_decided.disconnect(self._on_decided)
        if self._listener is not None:
            self._listener.join(5)

    def release_all(self) -> None:
        """The server is stopping: every long poll answers now, with the token as it is
        (still WAITING; the client asks again, of another process), instead of holding
        the shutdown for up to a minute. Later waits answer at once too."""
        self.stopping.set()
        with self._lock:
            for events in self._events.values():
                for event in events:
                    event.set()

    # -- waiting ---------------------------------------------------------------

    def wait_for(
        self, token: StoredToken, seconds: float, disconnected: Callable[[], bool]
    ) -> None:
        """Block until ``token`` leaves WAITING (stored, or by its own deadline), for at
        most ``seconds``, or until the client goes away.

        Returns at once when this process already holds ``capacity`` waiters: the
        caller answers with the current state and the client asks again.
        """
        event = self._enter(token.pk)
        if event is None:
            return
        try:
            end = time.monotonic() + seconds
            if token.timeout_at is not None:
                left = (token.timeout_at - utcnow()).total_seconds()
                end = min(end, time.monotonic() + max(left, 0) + 0.001)
            while True:
                event.clear()  # before reading, so that a wake-up after the read is kept
                status = db.session.scalar(select(Token.status).where(Token.pk == token.pk))
                db.session.close()  # hold no database connection while asleep
                if status != WAITING or self.stopping.is_set():
                    return
                if not self._sleep(event, end, disconnected):
                    return
        finally:
            self._leave(token.pk, event)

    def _enter(self, token_pk: int) -> threading.Event | None:
        self._ensure_listener()
        with self._lock:
            if self._active >= self.capacity:
                metrics.wait_refused()
                return None
            self._active += 1
            event = threading.Event()
            self._events.setdefault(token_pk, set()).add(event)
        metrics.waiter_entered()
        return event

    def _leave(self, token_pk: int, event: threading.Event) -> None:
        metrics.waiter_left()
        with self._lock:
            self._active -= 1
            events = self._events[token_pk]
            events.discard(event)
            if not events:
                del self._events[token_pk]

    @staticmethod
    def _sleep(event: threading.Event, end: float, disconnected: Callable[[], bool]) -> bool:
        """True when woken; False at ``end`` or when the client has gone."""
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            if event.wait(min(left, DISCONNECT_CHECK_SECONDS)):
                return True
            if disconnected():
                return False

    # -- waking ----------------------------------------------------------------

    def notify(self, token_pks: Iterable[int]) -> None:
        with self._lock:
            for pk in token_pks:
                for event in self._events.get(pk, ()):
                    event.set()

    def waited_pks(self) -> list[int]:
        with self._lock:
            return list(self._events)

    def _on_decided(self, sender, token_pks=(), **_):
        self.notify(token_pks)

    def _ensure_listener(self) -> None:
        if self._listener is not None:
            return
        with self._lock:
            if self._listener is not None:
                return
            url = make_url(self.app.config["SQLALCHEMY_DATABASE_URI"])
            target = _listen_postgresql if url.get_backend_name() == "postgresql" else _poll_sqlite
            self._listener = threading.Thread(
                target=_forever, args=(target, self, url), name="waitpoint-wakeups", daemon=True
            )
            self._listener.start()


def _forever(target, hub: WaitHub, url) -> None:
    """Run a listener, reconnecting with a short backoff if the database goes away."""
    backoff = 0.1
    while not hub.stopping.is_set():
        try:
            target(hub, url)
        except Exception:  # noqa: BLE001  (keep listening whatever happened)
            log.exception("wake-up listener failed; reconnecting in %.1fs", backoff)
        # Whatever was missed while reconnecting: let every waiter re-check.
        hub.notify(hub.waited_pks())
        hub.stopping.wait(backoff)
        backoff = min(backoff * 2, 5.0)


def _listen_postgresql(hub: WaitHub, url) -> None:
    with listening_connection(url, NOTIFY_CHANNEL) as conn:
        hub.notify(hub.waited_pks())  # anything decided before LISTEN took effect
        while not hub.stopping.is_set():
            for note in conn.notifies(timeout=1.0):
                hub.notify(int(pk) for pk in note.payload.split(",") if pk)


def _poll_sqlite(hub: WaitHub, url) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            driver.execute("PRAGMA busy_timeout=1000")
            version = None
            while not hub.stopping.is_set():
                current = driver.execute("PRAGMA data_version").fetchone()[0]
                waited = hub.waited_pks()
                if current != version and waited:
                    version = current
                    decided = conn.execute(
                        select(Token.pk).where(Token.pk.in_(waited), Token.status != WAITING)
                    ).scalars()
                    conn.rollback()
                    hub.notify(decided)
                time.sleep(SQLITE_POLL_SECONDS)
    finally:
        engine.dispose()


def client_gone(environ: dict) -> Callable[[], bool]:
    """A check for a closed client connection (gunicorn exposes the socket)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def check() -> bool:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False  # open, nothing sent
        except OSError:
            return True

    return check
