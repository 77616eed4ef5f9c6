"""Expiry: 100 k tokens due in the same second, and the lag under a steady flow.

    python bench/expiry.py [sqlite|postgresql ...]

1. Bulk-load 100,000 waiting tokens all due at one instant a few seconds ahead, start
   `waitpoint serve` (schedulers on), and time from that instant until none is stored
   WAITING.
2. Create tokens through the API at a steady rate (20/s for 10 s), each due 1 s later,
   and report the expiry lag (stored TIMED_OUT time minus deadline), p50 and p99.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from common import HIGH_LIMITS, RssSampler, bulk_load, fresh_app, support, write_results
from sqlalchemy import create_engine, text

DUE = 100_000


def stored_waiting(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM tokens WHERE status = 'WAITING'")).scalar()


def flow_lags(app) -> list[float]:
    """Seconds between each steady-flow token's deadline and its stored TIMED_OUT."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Token, TokenTag

    with app.app_context():
        rows = db.session.execute(
            select(Token.finished_at, Token.timeout_at)
            .join(TokenTag, TokenTag.token_pk == Token.pk)
            .where(TokenTag.tag == "flow", Token.status == "TIMED_OUT")
        ).all()
        db.engine.dispose()
    return [(finished - deadline).total_seconds() for finished, deadline in rows]


def run(kind: str) -> dict:
    from app.domain.timeutil import utcnow

    tmp = Path(tempfile.mkdtemp())
    url, app, key = fresh_app(kind, tmp, "expiry")
    engine = create_engine(url)
    try:
        due_at = utcnow() + timedelta(seconds=20)
        bulk_load(
            app,
            DUE,
            waiting_share=1.0,
            timeout_at=due_at,
            fixed_tags=("due",),
            customers=None,
            kinds=False,
        )
        app.extensions["waitpoint_waits"].close()
        batch = os.environ.get("WAITPOINT_SWEEP_BATCH", "1000")
        server = support.ServerProcess(url, tmp, WAITPOINT_SWEEP_BATCH=batch, **HIGH_LIMITS).start()
        with RssSampler(server.proc.pid) as rss:
            time.sleep(max(0.0, (due_at - utcnow()).total_seconds()))
            started = time.monotonic()
            while stored_waiting(engine):
                time.sleep(0.05)
                if time.monotonic() - started > 120:
                    raise RuntimeError("not all timed out within 120 s")
            burst = time.monotonic() - started

            # A steady flow of tokens, each due one second after creation.
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {key}"}
            ) as http:
                for _ in range(200):
                    http.post("/api/v1/waitpoints/tokens", json={"timeout": "1s", "tags": ["flow"]})
                    time.sleep(0.05)
            time.sleep(2.5)
        server.stop()
        lags = sorted(flow_lags(app))
        row = {
            "part": "expiry",
            "database": kind,
            "due_tokens": DUE,
            "all_timed_out_seconds": round(burst, 2),
            "flow_tokens": len(lags),
            "lag_p50_ms": round(statistics.median(lags) * 1000, 1),
            "lag_p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 1),
            "peak_rss_mib": rss.peak_mib,
        }
        print(
            f"{kind:10} {DUE} due at once: all TIMED_OUT after {row['all_timed_out_seconds']} s"
            f" | steady flow: lag p50 {row['lag_p50_ms']} ms p99 {row['lag_p99_ms']} ms"
            f" | peak RSS {row['peak_rss_mib']} MiB",
            flush=True,
        )
        return row
    finally:
        engine.dispose()
        support.drop_database(url)


if __name__ == "__main__":
    rows = [run(kind) for kind in (sys.argv[1:] or ["sqlite", "postgresql"])]
    write_results("expiry", rows)
