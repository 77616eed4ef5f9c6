"""List latency on big projects: the API list and the dashboard board (with its counts)
for "WAITING + a tag", at 10 k and 100 k tokens (add 1000000 with --sizes).

    python bench/scale.py [--sizes 10000,100000] [--db sqlite|postgresql|both]

Tokens are bulk-loaded straight into a fresh, migrated database (10 % waiting, tags
from a few hundred customers plus a kind). Times are server time: requests go
through the real app in-process (Flask's test client), median and p99 of 30
requests each, after a warm-up. Figures go to bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TAG = "customer:42"
BATCH = 20_000


def load(app, n: int) -> None:
    from sqlalchemy import insert

    from app import accounts
    from app.extensions import db
    from app.models import Token, TokenTag
    from app.timeutil import utcnow

    rng = random.Random(7)
    now = utcnow()
    with app.app_context():
        accounts.create_user("bench@example.com", "bench-password-123", ["bench"], now)
        for start in range(0, n, BATCH):
            tokens, tags = [], []
            for i in range(start, min(n, start + BATCH)):
                status = "WAITING" if rng.random() < 0.1 else rng.choice(["COMPLETED", "TIMED_OUT"])
                created = now - timedelta(seconds=n - i)
                timeout = created + timedelta(days=30)
                names = [
                    f"customer:{rng.randrange(300)}",
                    rng.choice(["kind:refund", "kind:deploy"]),
                ]
                tokens.append(
                    {
                        "pk": i + 1,
                        "public_id": f"{i:025d}",
                        "project_id": 1,
                        "status": status,
                        "created_at": created,
                        "timeout_at": timeout,
                        "tags_json": json.dumps(names),
                        "finished_at": None,
                    }
                )
                tags += [
                    {
                        "token_pk": i + 1,
                        "tag": t,
                        "project_id": 1,
                        "status": status,
                        "timeout_at": timeout,
                    }
                    for t in names
                ]
            db.session.execute(insert(Token), tokens)
            db.session.execute(insert(TokenTag), tags)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            db.session.execute(text("SELECT setval('tokens_pk_seq', :n)"), {"n": n})
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
        else:
            from sqlalchemy import text

            db.session.execute(text("ANALYZE"))
            db.session.commit()


def timed(client, path: str, headers=None, rounds: int = 30) -> dict:
    for _ in range(3):
        assert client.get(path, headers=headers).status_code == 200
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(samples[int(0.99 * (len(samples) - 1))] * 1000, 2),
    }


def bench(kind: str, n: int, tmp: Path) -> dict:
    from flask_migrate import upgrade

    import tests.support as support
    from app.cli import create_api_key
    from app.extensions import db
    from tests.conftest import make_app

    support.PG_URL = PG_URL if kind == "postgresql" else None
    url = support.create_database(tmp)
    app = make_app(url, WTF_CSRF_ENABLED=False)
    try:
        with app.app_context():
            upgrade()
            key = create_api_key("bench")
        started = time.perf_counter()
        load(app, n)
        loaded = time.perf_counter() - started
        client = app.test_client()
        client.post("/login", data={"email": "bench@example.com", "password": "bench-password-123"})
        auth = {"Authorization": f"Bearer {key}"}
        row = {
            "database": kind,
            "tokens": n,
            "load_seconds": round(loaded, 1),
            "api_list": timed(
                client,
                f"/api/v1/waitpoints/tokens?filter[status]=WAITING"
                f"&filter[tags]={TAG}&page[size]=25",
                auth,
            ),
            "dashboard_board": timed(
                client,
                f"/dashboard/p/1/tokens?tag={TAG}",
                {"HX-Request": "true", "HX-Target": "board"},
            ),
            "dashboard_page": timed(client, f"/dashboard/p/1/tokens?tag={TAG}"),
        }
        with app.app_context():
            db.engine.dispose()
        return row
    finally:
        app.extensions["waitpoint_waits"].close()
        support.drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for n in (int(s) for s in args.sizes.split(",")):
                row = bench(kind, n, Path(tmp))
                rows.append(row)
                print(
                    f"{kind:10} {n:>8} tokens (loaded in {row['load_seconds']:5.1f} s) | "
                    + " | ".join(
                        f"{name} p50 {row[name]['p50_ms']:6.2f} ms "
                        f"p99 {row[name]['p99_ms']:6.2f} ms"
                        for name in ("api_list", "dashboard_board", "dashboard_page")
                    ),
                    flush=True,
                )
    out = ROOT / "bench" / "results" / "scale.json"
    out.write_text(
        json.dumps(
            {
                "machine": os.uname().nodename,
                "cpus": os.cpu_count(),
                "filter": f"WAITING + {TAG}",
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
