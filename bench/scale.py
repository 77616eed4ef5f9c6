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
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import bulk_load, fresh_app, support, write_results

TAG = "customer:42"


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
    from app import accounts
    from app.extensions import db
    from app.timeutil import utcnow

    url, app, key = fresh_app(kind, tmp)
    try:
        with app.app_context():
            accounts.create_user("bench@example.com", "bench-password-123", ["bench"], utcnow())
        started = time.perf_counter()
        bulk_load(app, n)
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
    write_results(
        "scale",
        {
            "machine": os.uname().nodename,
            "cpus": os.cpu_count(),
            "filter": f"WAITING + {TAG}",
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
