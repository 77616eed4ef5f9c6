"""List latency on big projects, for "WAITING + a tag", at 10 k, 100 k and 1 M tokens.

    python bench/scale.py [--sizes 10000,100000,1000000] [--db sqlite|postgresql|both]

Each size gets its own fresh, migrated database, bulk-loaded: 10 % waiting, a kind tag
(refund or deploy) and a customer tag. The project grows by customers: one per 330
tokens, so the measured tag (one customer) holds about 330 tokens, 33 waiting, at every
size; a page of 25 is full and the counts count the same tokens, and what grows is
everything around them. Measured: the API list and the dashboard's board fragment
as requests through the real app in-process (Flask's test client: server time, no
network), and the board's two queries on their own: the page of tokens and the status
counts. The machine drifts, so the sizes are measured in alternation, ROUNDS rounds of
SAMPLES requests each; p50 and p99 are over all samples of a size. The scale figure is
the ratio of p50 at the largest size to p50 at the smallest. Figures go to
bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import RssSampler, bulk_load, fresh_app, support, write_results

TAG = "customer:7"
TOKENS_PER_CUSTOMER = 330
MEASURES = ("api_list", "dashboard_board", "dashboard_list", "dashboard_counts")
ROUNDS = 5
SAMPLES = 10


class Project:
    """One size: its database, the app over it, and the four calls to time."""

    def __init__(self, kind: str, n: int, tmp: Path):
        from app.dashboard.board import BoardFilter, board_page, status_counts
        from app.domain import accounts
        from app.domain.timeutil import utcnow

        self.n = n
        self.url, self.app, key = fresh_app(kind, tmp)
        with self.app.app_context():
            accounts.create_user("bench@example.com", "bench-password-123", ["bench"], utcnow())
        started = time.perf_counter()
        bulk_load(self.app, n, customers=max(8, n // TOKENS_PER_CUSTOMER))
        self.load_seconds = round(time.perf_counter() - started, 1)
        client = self.app.test_client()
        client.post("/login", data={"email": "bench@example.com", "password": "bench-password-123"})
        board = BoardFilter(status="WAITING", tags=(TAG,))
        with self.app.app_context():
            self.waiting_with_tag = status_counts(1, board, utcnow())["WAITING"]

        def in_app(query):
            def call():
                with self.app.app_context():
                    query()

            return call

        self.calls = {
            "api_list": get_ok(
                client,
                f"/api/v1/waitpoints/tokens?filter[status]=WAITING&filter[tags]={TAG}"
                "&page[size]=25",
                {"Authorization": f"Bearer {key}"},
            ),
            "dashboard_board": get_ok(
                client,
                f"/dashboard/p/1/tokens?tag={TAG}",
                {"HX-Request": "true", "HX-Target": "board"},
            ),
            "dashboard_list": in_app(lambda: board_page(1, board, utcnow(), 25)),
            "dashboard_counts": in_app(lambda: status_counts(1, board, utcnow())),
        }
        self.samples: dict[str, list[float]] = {name: [] for name in MEASURES}
        for call in self.calls.values():  # warm up
            for _ in range(3):
                call()

    def sample(self) -> None:
        for name, call in self.calls.items():
            for _ in range(SAMPLES):
                started = time.perf_counter()
                call()
                self.samples[name].append(time.perf_counter() - started)

    def close(self) -> None:
        from app.extensions import db

        with self.app.app_context():
            db.engine.dispose()
        self.app.extensions["waitpoint_waits"].close()
        support.drop_database(self.url)


def get_ok(client, path: str, headers=None):
    def call():
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code)

    return call


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2),
    }


def bench(kind: str, sizes: list[int], tmp: Path) -> list[dict]:
    projects = []
    try:
        for n in sizes:
            projects.append(Project(kind, n, tmp))
        with RssSampler(os.getpid()) as rss:  # the app runs in this process
            for _ in range(ROUNDS):
                for project in projects:
                    project.sample()
        rows = []
        for project in projects:
            row = {
                "database": kind,
                "tokens": project.n,
                "waiting_with_tag": project.waiting_with_tag,
                "load_seconds": project.load_seconds,
                **{name: summary(project.samples[name]) for name in MEASURES},
                "peak_rss_mib": rss.peak_mib,
            }
            rows.append(row)
            print(
                f"{kind:10} {project.n:>8} tokens (loaded in {row['load_seconds']:5.1f} s) | "
                + " | ".join(f"{name} p50 {row[name]['p50_ms']:6.2f} ms" for name in MEASURES),
                flush=True,
            )
        return rows
    finally:
        for project in projects:
            project.close()


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
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for kind in kinds for row in bench(kind, sizes, Path(tmp))]
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
