"""Rate-limit counters shared by every process and host: a storage for ``limits``.

Fixed windows, one statement per hit: an upsert that adds to the counter, or starts a
new window when the old one has expired, and returns the count.

- PostgreSQL: the ``rate_limits`` table of the application's database, ``UNLOGGED``
  (counters need no crash safety, so their writes skip the WAL), written through a few
  autocommit connections of their own, so that a counter's row lock lasts one statement,
  never a request's transaction.
- SQLite: the same table in a file of its own beside the database
  (``<database>-ratelimit``), with ``synchronous=OFF``, so that counting never queues
  behind the main database's fsynced writers. One connection per process, one statement
  at a time; processes take turns through SQLite's own lock, which a statement holds for
  ~10 µs. (A ``flock`` queue like the main database's writers' was tried: under load its
  helper thread per contended turn cost more, retrieves keeping ~0.7 of their throughput
  without limits instead of ~0.9.)

Expired counters are deleted by whichever process counts first after a minute.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time

from limits.storage import Storage
from sqlalchemy import create_engine

PURGE_EVERY = 60.0  # seconds between deletions of expired counters (per process)
POSTGRES_POOL_SIZE = 4  # connections per process for counting
STORAGE_TIMEOUT = 1.0  # seconds a hit waits for a connection or a lock, then gives up

_INCR = """
INSERT INTO rate_limits (key, hits, expires_at) VALUES (:key, :amount, :expires_at)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN rate_limits.expires_at > :now
                THEN rate_limits.hits + excluded.hits ELSE excluded.hits END,
    expires_at = CASE WHEN rate_limits.expires_at > :now
                      THEN rate_limits.expires_at ELSE excluded.expires_at END
RETURNING hits, expires_at
"""
_GET = "SELECT hits, expires_at FROM rate_limits WHERE key = :key AND expires_at > :now"
_CLEAR = "DELETE FROM rate_limits WHERE key = :key"
_PURGE = "DELETE FROM rate_limits WHERE expires_at <= :now"
_RESET = "DELETE FROM rate_limits"
_NAMED = re.compile(r":(\w+)")  # SQLite's :name, psycopg's %(name)s
# The SQLite file's own schema; on PostgreSQL the table comes from migration 0005.
_SQLITE_TABLE = """
CREATE TABLE IF NOT EXISTS rate_limits (
    key VARCHAR(255) NOT NULL PRIMARY KEY,
    hits INTEGER NOT NULL,
    expires_at DOUBLE NOT NULL
) WITHOUT ROWID
"""


class _SqlCounters(Storage):
    """Counters in a ``rate_limits`` table; subclasses run the statements."""

    STORAGE_SCHEME = None  # built by the app, never from a URI

    def __init__(self) -> None:
        super().__init__()
        self._next_purge = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return Exception

    def _rows(self, sql: str, params: dict) -> list[tuple]:
        raise NotImplementedError

    def _write(self, sql: str, params: dict) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.incr_with_expiry(key, expiry, amount)[0]

    def incr_with_expiry(self, key: str, expiry: float, amount: int = 1) -> tuple[int, float]:
        """Add ``amount``; the count and the end of its window, read by the same statement
        (a lease must never outlive the window it was taken in)."""
        now = time.time()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            self._write(_PURGE, {"now": now})
        params = {"key": key, "amount": amount, "expires_at": now + expiry, "now": now}
        hits, expires_at = self._rows(_INCR, params)[0]
        return hits, expires_at

    def get(self, key: str) -> int:
        rows = self._rows(_GET, {"key": key, "now": time.time()})
        return rows[0][0] if rows else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        rows = self._rows(_GET, {"key": key, "now": now})
        return rows[0][1] if rows else now

    def check(self) -> bool:
        try:
            self._rows("SELECT 1", {})
        except Exception:
            return False
        return True

    def reset(self) -> int:
        return self._write(_RESET, {})

    def clear(self, key: str) -> None:
        self._write(_CLEAR, {"key": key})


class PostgresCounters(_SqlCounters):
    def __init__(self, url, pool_size: int = POSTGRES_POOL_SIZE) -> None:
        import psycopg  # here, not at the top: a SQLite deployment never loads the driver

        super().__init__()
        self._connection_lost = psycopg.OperationalError
        # Connects on first use. No pre-ping: a dead connection fails one hit (which lets
        # its request through) and is replaced.
        self._engine = create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=STORAGE_TIMEOUT,
            connect_args={"connect_timeout": 2},
        )
        self._statements: dict[str, str] = {}

    def _execute(self, sql: str, params: dict, fetch: bool):
        # Straight through psycopg on a pooled connection: SQLAlchemy's statement execution
        # would double what a hit costs (~80 µs against ~45 µs here).
        statement = self._statements.get(sql)
        if statement is None:
            statement = self._statements[sql] = _NAMED.sub(r"%(\1)s", sql)
        conn = self._engine.raw_connection()
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if fetch else cursor.rowcount
        except self._connection_lost:
            conn.invalidate()  # most likely a lost connection: the pool makes a new one
            raise
        finally:
            conn.close()

    def _rows(self, sql: str, params: dict) -> list[tuple]:
        return self._execute(sql, params, fetch=True)

    def _write(self, sql: str, params: dict) -> int:
        return self._execute(sql, params, fetch=False)

    def close(self) -> None:
        self._engine.dispose()


class SqliteCounters(_SqlCounters):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._turns = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        # Called with the turn held: one thread of this process at a time.
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=STORAGE_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                # Counters may lose their last increments in a power cut; nothing else.
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute(_SQLITE_TABLE)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, sql: str, params: dict, fetch: bool):
        if not self._turns.acquire(timeout=STORAGE_TIMEOUT):
            raise TimeoutError("the rate-limit counters were busy")
        try:
            cursor = self._connection().execute(sql, params)
            return cursor.fetchall() if fetch else cursor.rowcount
        finally:
            self._turns.release()

    def _rows(self, sql: str, params: dict) -> list[tuple]:
        return self._run(sql, params, fetch=True)

    def _write(self, sql: str, params: dict) -> int:
        return self._run(sql, params, fetch=False)

    def close(self) -> None:
        # Without waiting for a turn: a hit racing this fails, and lets its request through.
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
