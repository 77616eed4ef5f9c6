"""Engine set-up: SQLite tuned for a server, and explicit write transactions.

SQLite's default ("deferred") transactions take the write lock only at the first
write; two requests that both read and then write then fail with "database is
locked" instead of waiting. Service functions that write therefore open their
transaction with ``write_transaction()``, which on SQLite begins it IMMEDIATE, so
the conditional UPDATEs see fresh rows; writers queue first (``_WriterQueue``).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..extensions import db
from . import metrics

SQLITE_BUSY_TIMEOUT = 10.0  # seconds a SQLite writer waits for its turn (default)
_WRITE = "waitpoint_write"


def configure_engine(engine: Engine, busy_timeout: float = SQLITE_BUSY_TIMEOUT) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin) instead of pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        # FULL: a commit that returned is on disk, even after a power cut.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    writers = _WriterQueue(engine.url.database, busy_timeout)

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        if connection.get_execution_options().get(_WRITE, False):
            queued = time.perf_counter()
            try:
                writers.acquire()
            finally:
                metrics.writer_waited(time.perf_counter() - queued)
            connection.info[_WRITE] = True
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _release(connection)
                raise
        else:
            connection.exec_driver_sql("BEGIN")

    def _release(connection):
        if connection.info.pop(_WRITE, False):
            writers.release()

    @event.listens_for(engine.pool, "checkin")
    def _release_on_checkin(_dbapi_connection, record):
        # The session gives its connection back once the COMMIT (or ROLLBACK) has
        # finished: only then may the next writer go.
        if record is not None and record.info.pop(_WRITE, False):
            writers.release()


def sqlite_file(database: str | None) -> str | None:
    """The file of a SQLite database (a URL's database part), or None for an in-memory
    database or a URI filename (``file:...``): what the files kept beside a database (the
    writers' lock, the rate-limit counters, the API-key revision) are named after."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def listening_connection(url, channel: str):
    """A psycopg connection (autocommit) that ``LISTEN``s on ``channel``, for a listener
    thread. TCP keepalives: a connection that a firewall or a failover dropped silently is
    found dead (and the listener reconnects) instead of waiting for news forever."""
    import psycopg  # here, not at the top: a SQLite deployment never loads the driver

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(dsn, autocommit=True, **_LISTENER_OPTIONS)
    try:
        conn.execute(f"LISTEN {channel}")
    except BaseException:
        conn.close()
        raise
    return conn


_LISTENER_OPTIONS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class WriterTimeout(RuntimeError):
    """A SQLite writer waited longer than the busy timeout for its turn."""


class _WriterQueue:
    """Writers of one SQLite database wait here, not in SQLite's busy handler.

    The busy handler polls with growing sleeps (up to 100 ms each), so under load a
    writer of one process can wait seconds while the other process's writers keep
    getting in. Here writers of this process queue on a lock, and then processes
    (gunicorn workers, the CLI) on an exclusive ``flock`` of ``<database>-writer.lock``,
    which the kernel hands to a waiter the moment it is released. Neither wait is
    longer than the busy timeout: past it the writer fails with "database is locked",
    as SQLite itself would, instead of hanging behind a stuck process.
    """

    def __init__(self, database: str | None, timeout: float = SQLITE_BUSY_TIMEOUT):
        self._threads = threading.Lock()
        self._timeout = timeout
        path = sqlite_file(database)
        self._path = None if path is None else f"{path}-writer.lock"
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        if not self._threads.acquire(timeout=self._timeout):
            raise WriterTimeout("database is locked (waited for the other writers)")
        if self._path is None:
            return
        try:
            if self._pid != os.getpid():  # never share the lock's file across a fork
                # Read-only suffices for flock, so a lock file created by another user
                # (a CLI run as root, say) does not lock the service out.
                self._fd = os.open(self._path, os.O_RDONLY | os.O_CREAT, 0o644)
                self._pid = os.getpid()
            self._flock()
        except BaseException:
            self._threads.release()
            raise

    def _flock(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        # Another process holds it: block in the kernel (woken the moment it is
        # released), in a helper thread so that this one can stop waiting at the timeout.
        result: list = []
        settled = threading.Condition()

        def wait() -> None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                got: object = True
            except OSError as exc:
                got = exc
            with settled:
                if result:  # the requester gave up meanwhile: pass the lock on
                    if got is True:
                        fcntl.flock(self._fd, fcntl.LOCK_UN)
                    return
                result.append(got)
                settled.notify()

        threading.Thread(target=wait, name="sqlite-writer-lock", daemon=True).start()
        with settled:
            if not settled.wait_for(lambda: bool(result), timeout=self._timeout):
                result.append(None)
                raise WriterTimeout("database is locked (another process holds the write lock)")
        if result[0] is not True:
            raise result[0]

    def release(self) -> None:
        try:
            if self._path is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def write_transaction() -> None:
    """Start the session's transaction as a writing one.

    On SQLite, a read-only transaction already open (say, the API key lookup) is ended
    first, since SQLite cannot upgrade it to IMMEDIATE. On PostgreSQL an open
    transaction simply goes on writing: under READ COMMITTED every statement sees the
    latest commits anyway, and this saves a COMMIT, a connection checkout and a BEGIN.
    """
    session = db.session()
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        if session.connection().info.get(_WRITE):
            return  # already writing: the caller read what it writes in this transaction
        session.commit()
    session.connection(execution_options={_WRITE: True})
