"""Shared by the benchmarks: databases, server processes, bulk loading, RSS sampling."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.support as support  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RESULTS = ROOT / "bench" / "results"
BATCH = 20_000


def use_database(kind: str) -> None:
    """Point the test helpers' database factory at SQLite or the local PostgreSQL."""
    support.PG_URL = PG_URL if kind == "postgresql" else None


def migrated_app(url: str):
    from flask_migrate import upgrade

    from tests.conftest import make_app

    app = make_app(url, WTF_CSRF_ENABLED=False)
    with app.app_context():
        upgrade()
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
    timeout_at=None,
    tags=None,
    project_id: int = 1,
    seed: int = 7,
) -> None:
    """Insert ``n`` tokens straight into the tables (1 s of API time per ~200 tokens saved)."""
    from sqlalchemy import func, insert, select, text

    from app.extensions import db
    from app.models import Token, TokenTag
    from app.timeutil import utcnow

    rng = random.Random(seed)
    now = utcnow()
    with app.app_context():
        first = (db.session.scalar(select(func.max(Token.pk))) or 0) + 1
        for start in range(0, n, BATCH):
            tokens, tag_rows = [], []
            for i in range(start, min(n, start + BATCH)):
                pk = first + i
                status = (
                    "WAITING"
                    if rng.random() < waiting_share
                    else rng.choice(["COMPLETED", "TIMED_OUT"])
                )
                created = now - timedelta(seconds=n - i)
                deadline = timeout_at or created + timedelta(days=30)
                names = (
                    tags(rng)
                    if tags
                    else [
                        f"customer:{rng.randrange(300)}",
                        rng.choice(["kind:refund", "kind:deploy"]),
                    ]
                )
                tokens.append(
                    {
                        "pk": pk,
                        "public_id": f"b{pk:024d}",
                        "project_id": project_id,
                        "status": status,
                        "created_at": created,
                        "timeout_at": deadline,
                        "tags_json": json.dumps(names),
                        "finished_at": None,
                    }
                )
                tag_rows += [
                    {
                        "token_pk": pk,
                        "tag": t,
                        "project_id": project_id,
                        "status": status,
                        "timeout_at": deadline,
                    }
                    for t in names
                ]
            db.session.execute(insert(Token), tokens)
            if tag_rows:
                db.session.execute(insert(TokenTag), tag_rows)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT setval('tokens_pk_seq', :n)"), {"n": first + n})
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()


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


def tree_rss_kib(pid: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        todo += children.get(current, [])
    return total


def start_server(url: str, tmp: Path, **env: str) -> support.ServerProcess:
    return support.ServerProcess(url, tmp, **env).start()


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
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            result[f"p{parts[0][:-1]}_ms"] = round(_ms(parts[1]), 2)
        elif line.startswith("STATUS"):
            fields = dict(kv.split("=") for kv in parts[1:])
            result["errors"] = sum(int(v) for v in fields.values())
        elif "Non-2xx or 3xx responses" in line:
            result["errors"] = max(result["errors"], int(parts[-1]))
    return result
