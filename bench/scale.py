"""List latency on big projects, for "WAITING + a tag", at 10 k, 100 k and 1 M tokens.

    python bench/scale.py [--sizes 10000,100000,1000000] [--db sqlite|postgresql|both]

Tokens are bulk-loaded straight into a fresh, migrated database (10 % waiting, tags
from 300 customers plus a kind). Measured, median and p99 of 30 rounds after a warm-up:
the API list and the dashboard's board fragment as requests through the real app
in-process (Flask's test client: server time, no network), and the dashboard's two
queries on their own: the page of tokens and the status counts. The ratio of each at
the largest size to the smallest is the scale figure. Figures go to
bench/results/scale.json.
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


def timed(call, rounds: int = 30) -> dict:
    for _ in range(3):
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(samples[int(0.99 * (len(samples) - 1))] * 1000, 2),
    }


def get_ok(client, path: str, headers=None):
    def call():
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code)

    return call


def bench(kind: str, n: int, tmp: Path) -> dict:
    from app import accounts
    from app.dashboard.queries import BoardFilter, board_page, status_counts
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
        board = BoardFilter(status="WAITING", tags=(TAG,))
        with app.app_context():
            queries = {
                "dashboard_list": timed(lambda: board_page(1, board, utcnow(), 25)),
                "dashboard_counts": timed(lambda: status_counts(1, board, utcnow())),
            }
            waiting = status_counts(1, board, utcnow())["WAITING"]
        row = {
            "database": kind,
            "tokens": n,
            "waiting_with_tag": waiting,
            "load_seconds": round(loaded, 1),
            "api_list": timed(
                get_ok(
                    client,
                    f"/api/v1/waitpoints/tokens?filter[status]=WAITING"
                    f"&filter[tags]={TAG}&page[size]=25",
                    auth,
                )
            ),
            "dashboard_board": timed(
                get_ok(
                    client,
                    f"/dashboard/p/1/tokens?tag={TAG}",
                    {"HX-Request": "true", "HX-Target": "board"},
                )
            ),
            **queries,
        }
        with app.app_context():
            db.engine.dispose()
        return row
    finally:
        app.extensions["waitpoint_waits"].close()
        support.drop_database(url)


MEASURES = ("api_list", "dashboard_board", "dashboard_list", "dashboard_counts")


def scale_ratios(rows: list[dict]) -> list[dict]:
    """Per database and measure: p50 at the largest size over p50 at the smallest."""
    ratios = []
    for kind in dict.fromkeys(row["database"] for row in rows):
        mine = sorted((r for r in rows if r["database"] == kind), key=lambda r: r["tokens"])
        small, large = mine[0], mine[-1]
        for name in MEASURES:
            ratios.append(
                {
                    "database": kind,
                    "what": name,
                    "smallest": small["tokens"],
                    "largest": large["tokens"],
                    "p50_ms": large[name]["p50_ms"],
                    "ratio": round(large[name]["p50_ms"] / small[name]["p50_ms"], 2),
                }
            )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
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
                    + " | ".join(f"{name} p50 {row[name]['p50_ms']:6.2f} ms" for name in MEASURES),
                    flush=True,
                )
    ratios = scale_ratios(rows)
    for ratio in ratios:
        print(
            f"{ratio['database']:10} {ratio['what']:17} {ratio['largest']} / {ratio['smallest']}"
            f" tokens: p50 {ratio['p50_ms']} ms, ratio {ratio['ratio']}",
            flush=True,
        )
    write_results(
        "scale",
        {
            "machine": os.uname().nodename,
            "cpus": os.cpu_count(),
            "filter": f"WAITING + {TAG}",
            "rows": rows,
            "ratios": ratios,
        },
    )


if __name__ == "__main__":
    main()
