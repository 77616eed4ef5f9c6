"""The API keys a process has found valid, kept until any key is revoked anywhere.

Looking a key up cost every API request a query (and on SQLite a transaction of its own
before a create's write): about a tenth of a retrieve. Revocation (``waitpoint keys
revoke``) moves a *revision* that every process sees before it trusts its cache:

- SQLite: a counter in ``<database>-keys``, a small file beside the database, read with
  one ``pread`` per request (about a microsecond) and raised under ``flock`` by a
  revocation, after its commit.
- PostgreSQL: a ``NOTIFY waitpoint_keys`` in the revoking transaction. Each process
  listens on a connection of its own and counts notifications (and reconnections); while
  it is not listening (starting up, the database gone) it caches nothing.

An entry is stored under the revision read before its query, so a revocation that
commits while a lookup is running is never cached over. Only valid keys are kept (at most
``MAX_KEYS``); a refused key is looked up each time, and counted by the rate limits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import Engine

NOTIFY_CHANNEL = "waitpoint_keys"
MAX_KEYS = 10_000
_WIDTH = 8  # the revision file: one unsigned 64-bit counter

log = logging.getLogger(__name__)


class KeyCache:
    def __init__(self, revision: Callable[[], int | None], close: Callable[[], None]):
        self.revision = revision
        self.close = close
        self._lock = threading.Lock()
        self._seen: int | None = None
        self._projects: dict[str, int] = {}

    def project_of(self, digest: str, look_up: Callable[[str], int | None]) -> int | None:
        """The project of a valid key with this digest, from the cache or ``look_up``."""
        revision = self.revision()
        if revision is not None:
            with self._lock:
                if revision == self._seen:
                    project = self._projects.get(digest)
                    if project is not None:
                        return project
                else:
                    self._projects.clear()
                    self._seen = revision
        project = look_up(digest)
        if project is not None and revision is not None:
            with self._lock:
                if self._seen == revision and len(self._projects) < MAX_KEYS:
                    self._projects[digest] = project
        return project

    def forget(self) -> None:
        """Drop every entry now (a revocation in this process)."""
        with self._lock:
            self._projects.clear()
            self._seen = None


class FileRevision:
    """The SQLite deployment's revision: a counter in a file every process on the host reads."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def __call__(self) -> int | None:
        try:
            if self._pid != os.getpid():  # never share the descriptor across a fork
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
                self._pid = os.getpid()
            return int.from_bytes(os.pread(self._fd, _WIDTH, 0) or b"\0", "big")
        except OSError:
            return None  # cannot tell whether a key was revoked: cache nothing

    def bump(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = int.from_bytes(os.pread(fd, _WIDTH, 0) or b"\0", "big")
            os.pwrite(fd, ((current + 1) % 2**64).to_bytes(_WIDTH, "big"), 0)
        finally:
            os.close(fd)

    def close(self) -> None:
        fd, opened_here = self._fd, self._pid == os.getpid()
        self._fd, self._pid = None, 0
        if fd is not None and opened_here:
            os.close(fd)


class NotifiedRevision:
    """The PostgreSQL deployment's revision: notifications counted by a listener thread."""

    def __init__(self, url):
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._lock = threading.Lock()
        self._count = 0
        self._listening = False
        self._pid = 0
        self._stopping = threading.Event()

    def __call__(self) -> int | None:
        if self._pid != os.getpid():  # the first request of a process starts its listener
            self._start()
        return self._count if self._listening else None

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._listening = False
            self._stopping = threading.Event()
            threading.Thread(
                target=self._run, args=(self._stopping,), name="waitpoint-keys", daemon=True
            ).start()

    def _run(self, stopping: threading.Event) -> None:
        import psycopg  # here, not at the top: a SQLite deployment never loads the driver

        backoff = 0.1
        while not stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._count += 1  # whatever was revoked before: a new revision
                    self._listening = True
                    backoff = 0.1
                    while not stopping.is_set():
                        for _note in conn.notifies(timeout=1.0):
                            self._count += 1
            except Exception:  # noqa: BLE001  (keep listening whatever happened)
                log.warning("API key revocations: listener failed; reconnecting", exc_info=True)
            finally:
                self._listening = False
            stopping.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def close(self) -> None:
        """Stop listening (the engine was disposed); the next lookup listens anew."""
        with self._lock:
            self._stopping.set()
            self._listening = False
            self._pid = 0


def for_engine(engine: Engine) -> KeyCache:
    """The cache for the app's database, closed with its engine."""
    url = engine.url
    database = url.database or ""
    if url.get_backend_name() == "postgresql":
        revision: FileRevision | NotifiedRevision = NotifiedRevision(url)
    elif database and database != ":memory:" and not database.startswith("file:"):
        revision = FileRevision(f"{database}-keys")
    else:
        return KeyCache(lambda: 0, lambda: None)  # an in-memory database: one process
    cache = KeyCache(revision, revision.close)
    event.listen(engine, "engine_disposed", lambda _engine: cache.close())
    return cache


def in_revoking_transaction(connection) -> None:
    """PostgreSQL: every process hears of the revocation when it commits."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")


def after_revocation(cache: KeyCache) -> None:
    """After the revocation committed: SQLite's processes see a new revision; this one
    forgets its keys at once (PostgreSQL's notification takes a moment to come back)."""
    if isinstance(cache.revision, FileRevision):
        cache.revision.bump()
    cache.forget()
