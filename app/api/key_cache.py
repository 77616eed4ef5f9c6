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
``MAX_KEYS``), and none for longer than ``MAX_AGE`` seconds: whatever goes wrong with the
news of a revocation (a listener's connection silently dropped by a firewall, the revision
file deleted), a revoked key stops working within that time. A refused key is looked up
each time, and counted by the rate limits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..infra.database import listening_connection, sqlite_file

NOTIFY_CHANNEL = "waitpoint_keys"
MAX_KEYS = 10_000
MAX_AGE = 60.0  # seconds an entry is trusted without looking the key up again
_WIDTH = 8  # the revision file: one unsigned 64-bit counter

log = logging.getLogger(__name__)


class KeyCache:
    def __init__(
        self,
        revision: Callable[[], int | None],
        close: Callable[[], None],
        max_age: float = MAX_AGE,
    ):
        self.revision = revision
        self.close = close
        self.max_age = max_age
        self._lock = threading.Lock()
        self._seen: int | None = None
        self._projects: dict[str, tuple[int, float]] = {}  # digest -> (project, looked up at)

    def project_of(self, digest: str, look_up: Callable[[str], int | None]) -> int | None:
        """The project of a valid key with this digest, from the cache or ``look_up``."""
        revision = self.revision()
        now = time.monotonic()
        if revision is not None:
            with self._lock:
                if revision == self._seen:
                    entry = self._projects.get(digest)
                    if entry is not None and now - entry[1] < self.max_age:
                        return entry[0]
                else:
                    self._projects.clear()
                    self._seen = revision
        project = look_up(digest)
        if project is not None and revision is not None:
            with self._lock:
                if self._seen == revision and len(self._projects) < MAX_KEYS:
                    self._projects[digest] = (project, now)
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
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def __call__(self) -> int | None:
        with self._lock:
            try:
                if self._pid != os.getpid() or os.fstat(self._fd).st_nlink == 0:
                    # First use in this process (never share a descriptor across a fork),
                    # or the file was deleted or replaced: read the one at the path now.
                    self._reopen()
                return int.from_bytes(os.pread(self._fd, _WIDTH, 0) or b"\0", "big")
            except (OSError, TypeError):
                return None  # cannot tell whether a key was revoked: cache nothing

    def _reopen(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        self._pid = os.getpid()

    def bump(self) -> None:
        """Raise the revision; ``OSError`` if the file cannot be written."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = int.from_bytes(os.pread(fd, _WIDTH, 0) or b"\0", "big")
            os.pwrite(fd, ((current + 1) % 2**64).to_bytes(_WIDTH, "big"), 0)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd, self._pid = None, 0


class NotifiedRevision:
    """The PostgreSQL deployment's revision: notifications counted by a listener thread."""

    def __init__(self, url):
        self._url = url
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
        backoff = 0.1
        while not stopping.is_set():
            try:
                with listening_connection(self._url, NOTIFY_CHANNEL) as conn:
                    self._count += 1  # whatever was revoked before: a new revision
                    self._set_listening(stopping, True)
                    backoff = 0.1
                    while not stopping.is_set():
                        for _note in conn.notifies(timeout=1.0):
                            self._count += 1
            except Exception:  # noqa: BLE001  (keep listening whatever happened)
                log.warning("API key revocations: listener failed; reconnecting", exc_info=True)
            finally:
                self._set_listening(stopping, False)
            stopping.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _set_listening(self, stopping: threading.Event, listening: bool) -> None:
        with self._lock:
            if stopping is self._stopping:  # a listener stopped by close() says nothing more
                self._listening = listening

    def close(self) -> None:
        """Stop listening (the engine was disposed); the next lookup listens anew."""
        with self._lock:
            self._stopping.set()
            self._listening = False
            self._pid = 0


def for_engine(engine: Engine) -> KeyCache:
    """The cache for the app's database, closed with its engine."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        revision: FileRevision | NotifiedRevision = NotifiedRevision(url)
    elif (database := sqlite_file(url.database)) is not None:
        revision = FileRevision(revision_path(database))
    else:  # in memory, or a URI filename: no revision file to share, so cache nothing
        return KeyCache(lambda: None, lambda: None)
    cache = KeyCache(revision, revision.close)
    event.listen(engine, "engine_disposed", lambda _engine: cache.close())
    return cache


def revision_path(database: str) -> str:
    """One file per database, however a process names it (a relative path, a symlink)."""
    return os.path.realpath(database) + "-keys"


def in_revoking_transaction(cache: KeyCache, connection) -> None:
    """Before the revocation commits. PostgreSQL: every process hears of it when it commits.
    SQLite: the revision is raised now (and again after the commit), so that a file this
    process cannot write stops the revocation (``OSError``) instead of leaving the other
    processes trusting the key."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")
    elif isinstance(cache.revision, FileRevision):
        cache.revision.bump()


def after_revocation(cache: KeyCache) -> None:
    """After the revocation committed: SQLite's processes see a new revision (a lookup
    that read the database between the two raises cached the key under the first); this
    one forgets its keys at once (PostgreSQL's notification takes a moment to come back)."""
    if isinstance(cache.revision, FileRevision):
        cache.revision.bump()
    cache.forget()
