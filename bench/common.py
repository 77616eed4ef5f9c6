"""Shared by the benchmarks: databases, server processes, bulk loading, RSS sampling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.support as support  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RESULTS = ROOT / "bench" / "results"
# Rate limits on, but far above what a benchmark sends from one key and one address: every
# request is counted and none is refused (bench/ratelimit.py measures what counting costs).
HIGH_LIMITS = {
    "WAITPOINT_RATE_LIMIT_API_KEY": "100000000/minute",
    "WAITPOINT_RATE_LIMIT_API_KEY_FAILURES": "100000000/minute",
    "WAITPOINT_RATE_LIMIT_CALLBACK": "100000000/minute",
    "WAITPOINT_RATE_LIMIT_CALLBACK_FAILURES": "100000000/minute",
}


# `waitpoint serve` as deployed, the limits out of reach (support.server_env sets the tests'
# shorter sweep interval; this is the default again).
SERVE_ENV = {**HIGH_LIMITS, "WAITPOINT_SWEEP_INTERVAL": "0.5"}


def use_database(kind: str) -> None:
    """Point the test helpers' database factory at SQLite or the local PostgreSQL."""
    support.PG_URL = PG_URL if kind == "postgresql" else None


def migrated_app(url: str):
    from app.cli import migrate_database
    from tests.support import make_app

    app = make_app(url, WTF_CSRF_ENABLED=False, **HIGH_LIMITS)
    with app.app_context():
        migrate_database()
    return app


def fresh_app(kind: str, tmp: Path, project: str = "bench"):
    """A new, migrated database of ``kind`` with an API key: ``(url, app, key)``."""
    from app.cli import create_api_key

    use_database(kind)
    url = support.create_database(tmp)
    app = migrated_app(url)
    with app.app_context():
        key = create_api_key(project)
    return url, app, key


def write_results(name: str, payload) -> None:
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def bulk_load(
    app,
    n: int,
    *,
    waiting_share: float = 0.1,
    timeout_at: datetime | None = None,
    fixed_tags: tuple[str, ...] = (),
    customers: int | None = 300,
    kinds: bool = True,
    project_id: int = 1,
) -> None:
    """Insert ``n`` tokens and their tag rows, generated inside the database.

    One ``INSERT ... SELECT`` per table over a number series, so a million tokens load
    in seconds. Token ``i`` (its ``pk``) is WAITING for a ``waiting_share`` of the pks
    (spread by a multiplicative hash), else COMPLETED or TIMED_OUT; it is created ``n - i``
    seconds ago and due ``timeout_at`` (default: 30 days after creation). Tags: each of
    ``fixed_tags``, ``customer:<0..customers-1>`` and ``kind:refund|deploy``.
    """
    from sqlalchemy import func, select, text

    from app.domain.timeutil import utcnow
    from app.extensions import db
    from app.models import Token

    with app.app_context():
        sql = _BulkSql(db.engine.dialect.name)
        first = (db.session.scalar(select(func.max(Token.pk))) or 0) + 1
        last = first + n - 1
        now = utcnow()
        status = (
            f"CASE WHEN (i * 2654435761) % 1000 < {round(waiting_share * 1000)} THEN 'WAITING'"
            " WHEN i % 2 = 0 THEN 'COMPLETED' ELSE 'TIMED_OUT' END"
        )
        created = sql.seconds_before(":now", ":last - i")
        deadline = ":due" if timeout_at else sql.seconds_before(":now", ":last - i - 2592000")
        tags = [f"'{tag}'" for tag in fixed_tags]
        if customers:
            tags.append(f"{sql.concat(repr('customer:'), f'(i * 7919) % {customers}')}")
        if kinds:
            tags.append("CASE WHEN i % 3 = 0 THEN 'kind:deploy' ELSE 'kind:refund' END")
        tags_json = sql.concat("'['", *_joined([sql.json_string(t) for t in tags]), "']'")
        params = {
            "first": first,
            "last": last,
            "now": sql.timestamp(now),
            "due": sql.timestamp(timeout_at) if timeout_at else None,
            "project": project_id,
        }
        db.session.execute(
            text(
                f"{sql.series} INSERT INTO tokens"
                " (pk, public_id, project_id, status, created_at, timeout_at, finished_at,"
                " tags_json)"
                f" SELECT i, {sql.public_id}, :project, {status}, {created}, {deadline},"
                f" CASE WHEN ({status}) = 'WAITING' THEN NULL ELSE {created} END, {tags_json}"
                " FROM s"
            ),
            params,
        )
        for tag in tags:
            db.session.execute(
                text(
                    f"{sql.series} INSERT INTO token_tags"
                    " (token_pk, tag, project_id, status, timeout_at)"
                    f" SELECT i, {tag}, :project, {status}, {deadline} FROM s"
                ),
                params,
            )
        db.session.commit()
        if sql.dialect == "postgresql":
            db.session.execute(text("SELECT setval('tokens_pk_seq', :n)"), {"n": last})
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()


def _joined(parts: list[str]) -> list[str]:
    out = []
    for index, part in enumerate(parts):
        out += [part] if index == 0 else ["','", part]
    return out


class _BulkSql:
    """The few SQL spellings that differ between SQLite and PostgreSQL for bulk_load."""

    def __init__(self, dialect: str):
        self.dialect = dialect
        if dialect == "postgresql":
            self.series = (
                "WITH s(i) AS"
                " (SELECT generate_series(CAST(:first AS bigint), CAST(:last AS bigint)))"
            )
            self.public_id = "'b' || lpad(i::text, 24, '0')"
        else:
            self.series = (
                "WITH RECURSIVE s(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM s"
                " WHERE i < :last)"
            )
            self.public_id = "printf('b%024d', i)"

    def timestamp(self, value: datetime):
        # SQLite stores naive UTC text with microseconds (SQLAlchemy's format).
        if self.dialect == "postgresql":
            return value
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def seconds_before(self, instant: str, seconds: str) -> str:
        if self.dialect == "postgresql":
            return f"CAST({instant} AS timestamptz) - make_interval(secs => {seconds})"
        return (
            f"strftime('%Y-%m-%d %H:%M:%S', {instant}, -({seconds}) || ' seconds')"
            f" || substr({instant}, 20)"
        )

    def concat(self, *parts: str) -> str:
        if self.dialect == "postgresql":
            return "(" + " || ".join(f"CAST({p} AS text)" for p in parts) + ")"
        return "(" + " || ".join(f"({p})" for p in parts) + ")"

    def json_string(self, expression: str) -> str:
        return self.concat("'\"'", expression, "'\"'")


class RssSampler:
    """Peak resident memory of a process and its children, sampled every 0.2 s."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            self._stop.wait(0.2)

    @property
    def peak_mib(self) -> float:
        return round(self.peak_kib / 1024, 1)


def _process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def _tree_kib(pid: int, path: str, field: str) -> int:
    """A field in kB summed over a process and its children (``VmRSS:`` of ``status``,
    ``Pss:`` of ``smaps_rollup``)."""
    total = 0
    for member in _process_tree(pid):
        try:
            with open(f"/proc/{member}/{path}") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def tree_rss_kib(pid: int) -> int:
    return _tree_kib(pid, "status", "VmRSS:")


def tree_pss_kib(pid: int) -> int:
    """Proportional set size: a page shared by n processes counts 1/n in each, so the
    workers' pages shared with gunicorn's master (the preloaded app) count once."""
    return _tree_kib(pid, "smaps_rollup", "Pss:")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by a process and its children."""
    ticks = 0
    for member in _process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def start_server(url: str, tmp: Path, **env: str) -> support.ServerProcess:
    return support.ServerProcess(url, tmp, **{**HIGH_LIMITS, **env}).start()


def wrk(
    url: str, seconds: int, connections: int, script: Path | None = None, env: dict | None = None
) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=seconds + 60,
        check=True,
    ).stdout
    return parse_wrk(out)


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(f"not a wrk duration: {text!r}")


def parse_wrk(out: str) -> dict:
    result = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = round(float(parts[1]), 1)
        elif "requests in" in line:
            result["requests"] = int(parts[0])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            result[f"p{parts[0][:-1]}_ms"] = round(_ms(parts[1]), 2)
        elif line.startswith("STATUS"):
            fields = dict(kv.split("=") for kv in parts[1:])
            result["errors"] = sum(int(v) for v in fields.values())
        elif "Non-2xx or 3xx responses" in line:
            result["errors"] = max(result["errors"], int(parts[-1]))
    return result
