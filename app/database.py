"""Engine set-up: SQLite tuned for a server, and explicit write transactions.

SQLite's default ("deferred") transactions take the write lock only at the first
write; two requests that both read and then write then fail with "database is
locked" instead of waiting. Service functions that write therefore open their
transaction with ``write_transaction()``, which on SQLite begins it IMMEDIATE, so
writers queue on the busy timeout and the conditional UPDATEs see fresh rows.
"""

from __future__ import annotations

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

    # SQLite's busy handler polls with growing sleeps, so under load some writers wait
    # far longer than others. Writers of this process queue on a lock instead (first
    # come, first served); the busy timeout is left to arbitrate between processes.
    writer = threading.Lock()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        if connection.get_execution_options().get(_WRITE, False):
            writer.acquire()
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
            writer.release()

    @event.listens_for(engine.pool, "checkin")
    def _release_on_checkin(_dbapi_connection, record):
        # The session gives its connection back once the COMMIT (or ROLLBACK) has
        # finished: only then may the next writer of this process go.
        if record is not None and record.info.pop(_WRITE, False):
            writer.release()


def write_transaction() -> None:
    """Start the session's transaction as a writing one.

    A read-only transaction already open (say, the API key lookup) is ended first,
    since SQLite cannot upgrade it to IMMEDIATE.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={_WRITE: True})
