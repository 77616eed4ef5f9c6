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

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE = "waitpoint_write"


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin) instead of pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a commit that returned is on disk, even after a power cut.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    writers = _WriterQueue(engine.url.database)

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        if connection.get_execution_options().get(_WRITE, False):
            writers.acquire()
            connection.info[_WRITE] = True
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _release(connection)
                raise
        # Reads run without BEGIN: each statement sees the latest commit (as under
        # PostgreSQL's READ COMMITTED), and a request that only reads saves BEGIN and
        # ROLLBACK. Everything that writes goes through write_transaction().

    def _release(connection):
        if connection.info.pop(_WRITE, False):
            writers.release()

    @event.listens_for(engine.pool, "checkin")
    def _release_on_checkin(_dbapi_connection, record):
        # The session gives its connection back once the COMMIT (or ROLLBACK) has
        # finished: only then may the next writer go.
        if record is not None and record.info.pop(_WRITE, False):
            writers.release()


class _WriterQueue:
    """Writers of one SQLite database wait here, not in SQLite's busy handler.

    The busy handler polls with growing sleeps (up to 100 ms each), so under load a
    writer of one process can wait seconds while the other process's writers keep
    getting in. Here writers of this process queue on a lock, and then processes
    (gunicorn workers, the CLI) on an exclusive ``flock`` of ``<database>-writer.lock``,
    which the kernel hands to a waiter the moment it is released. The busy timeout
    stays as the guard against writers that do not take part (other programs).
    """

    def __init__(self, database: str | None):
        self._threads = threading.Lock()
        in_memory = not database or database == ":memory:" or database.startswith("file:")
        self._path = None if in_memory else f"{database}-writer.lock"
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        self._threads.acquire()
        if self._path is None:
            return
        try:
            if self._pid != os.getpid():  # never share the lock's file across a fork
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        if self._path is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


def write_transaction() -> None:
    """Start the session's transaction as a writing one.

    A read-only transaction already open (say, the API key lookup) is ended first,
    since SQLite cannot upgrade it to IMMEDIATE.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={_WRITE: True})
