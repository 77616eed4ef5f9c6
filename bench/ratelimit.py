"""What the rate limits cost on the hot paths: create, retrieve and callback with the
limits on (set far above what the bench sends, so that every request is counted and none
refused) and off, in the same run, on the same database.

- In-process: Flask's test client, ROUNDS rounds of REQUESTS requests per path and
  setting, in alternation; the best round's time per request.
- Under load: two `waitpoint serve` (2 workers each) on one database, one with the limits
  and one without, driven by wrk as in bench/hotpaths.py, in alternation ROUNDS times;
  the ratio is the median of the per-round ratios on/off.

    python bench/ratelimit.py [sqlite] [postgresql]     (results in results/ratelimit.json)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import HIGH_LIMITS, bulk_load, fresh_app, support, write_results
from hotpaths import drive

TOKENS = "/api/v1/waitpoints/tokens"
PATHS = ("create", "retrieve", "callback")
ROUNDS = 3
REQUESTS = 500
CREATE = '{"tags":["bench","kind:new"],"timeout":"1h"}'


def in_process(kind: str, url: str, key: str) -> list[dict]:
    from tests.support import make_app

    apps = {
        "on": make_app(url, WTF_CSRF_ENABLED=False, **HIGH_LIMITS),
        "off": make_app(url, WTF_CSRF_ENABLED=False, WAITPOINT_RATE_LIMITS=False),
    }
    clients = {name: app.test_client() for name, app in apps.items()}
    auth = {"Authorization": f"Bearer {key}"}
    body = {"tags": ["bench", "kind:new"], "timeout": "1h"}
    maker = clients["off"]
    created = [maker.post(TOKENS, json=body, headers=auth).get_json() for _ in range(50)]
    # Each callback completes a token of its own: one per request, round and setting.
    spare = [
        maker.post(TOKENS, json=body, headers=auth).get_json()["url"]
        for _ in range((REQUESTS + 20) * ROUNDS * 2)
    ]
    callbacks = iter(u.removeprefix("http://localhost") for u in spare)

    def send(client, path):
        if path == "create":
            return client.post(TOKENS, json=body, headers=auth)
        if path == "retrieve":
            return client.get(f"{TOKENS}/{created[0]['id']}", headers=auth)
        return client.post(next(callbacks), json={"approved": True})

    rows = []
    for path in PATHS:
        best = {"on": float("inf"), "off": float("inf")}
        for r in range(ROUNDS):
            for name in ("on", "off") if r % 2 == 0 else ("off", "on"):
                client = clients[name]
                for _ in range(20):  # warm-up
                    assert send(client, path).status_code == 200
                started = time.perf_counter()
                for _ in range(REQUESTS):
                    send(client, path)
                best[name] = min(best[name], (time.perf_counter() - started) / REQUESTS)
        row = {
            "part": "rate limits in-process",
            "database": kind,
            "what": path,
            "on_ms": round(best["on"] * 1000, 3),
            "off_ms": round(best["off"] * 1000, 3),
            "cost_us": round((best["on"] - best["off"]) * 1e6, 1),
            "ratio": round(best["off"] / best["on"], 2),  # throughput on / off
        }
        print(
            f"{kind:10} {path:9} in-process: {row['on_ms']:.3f} ms with limits, "
            f"{row['off_ms']:.3f} ms without ({row['cost_us']:+.1f} us, ratio {row['ratio']})",
            flush=True,
        )
        rows.append(row)
    from app.extensions import db

    for app in apps.values():
        app.extensions["waitpoint_waits"].close()
        with app.app_context():
            db.engine.dispose()
    return rows


def under_load(kind: str, url: str, key: str, app, tmp: Path) -> list[dict]:
    from app.domain.capability import callback_path
    from app.domain.stored import ID_PREFIX
    from app.extensions import db
    from app.models import WAITING, Token

    bulk_load(app, 30_000, waiting_share=1.0, fixed_tags=("bench",), kinds=False)
    with app.app_context(), app.test_request_context():
        ids = [
            ID_PREFIX + t.public_id
            for t in db.session.query(Token).filter(Token.status == WAITING).limit(30_000)
        ]
        callbacks = [f'POST {callback_path(i)} {{"approved":true}}' for i in ids]
        db.engine.dispose()
    share = len(callbacks) // (ROUNDS * 2)
    lines = {
        "create": lambda _: [f"POST {TOKENS} {CREATE}"],
        "retrieve": lambda _: [f"GET {TOKENS}/{i}" for i in ids[:1000]],
        "callback": lambda n: callbacks[n * share : (n + 1) * share],
    }
    servers = {
        "on": support.ServerProcess(url, tmp, **HIGH_LIMITS).start(),
        "off": support.ServerProcess(url, tmp, WAITPOINT_RATE_LIMITS="off").start(),
    }
    rows = []
    try:
        for path in PATHS:
            rounds = []
            for r in range(ROUNDS):
                result = {}
                for i, name in enumerate(("on", "off") if r % 2 == 0 else ("off", "on")):
                    server = servers[name]
                    result[name] = drive(
                        server.url, server.proc.pid, lines[path](2 * r + i), tmp, f"Bearer {key}"
                    )
                rounds.append(result)
            rows.append(summarize(kind, path, rounds))
    finally:
        for server in servers.values():
            server.stop()
    return rows


def summarize(kind: str, path: str, rounds: list[dict]) -> dict:
    def median(name, field):
        return round(statistics.median(r[name].get(field, 0) for r in rounds), 2)

    row = {
        "part": "rate limits under load",
        "database": kind,
        "what": path,
        "on_rps": median("on", "rps"),
        "off_rps": median("off", "rps"),
        "on_p99_ms": median("on", "p99_ms"),
        "off_p99_ms": median("off", "p99_ms"),
        "on_cpu_ms_per_request": median("on", "cpu_ms_per_request"),
        "off_cpu_ms_per_request": median("off", "cpu_ms_per_request"),
        "errors": sum(r[name]["errors"] for r in rounds for name in ("on", "off")),
        "ratio": round(statistics.median(r["on"]["rps"] / r["off"]["rps"] for r in rounds), 2),
        "rounds": [{"on_rps": r["on"]["rps"], "off_rps": r["off"]["rps"]} for r in rounds],
    }
    print(
        f"{kind:10} {path:9} under load: {row['on_rps']:8.1f} req/s with limits, "
        f"{row['off_rps']:8.1f} without (ratio {row['ratio']:.2f}); p99 {row['on_p99_ms']} / "
        f"{row['off_p99_ms']} ms; server CPU {row['on_cpu_ms_per_request']:.3f} / "
        f"{row['off_cpu_ms_per_request']:.3f} ms per request; errors {row['errors']}",
        flush=True,
    )
    return row


def run(kinds: list[str]) -> list[dict]:
    rows = []
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            url, app, key = fresh_app(kind, Path(tmp))
            try:
                rows += in_process(kind, url, key)
                rows += under_load(kind, url, key, app, Path(tmp))
            finally:
                app.extensions["waitpoint_waits"].close()
                support.drop_database(url)
    return rows


if __name__ == "__main__":
    write_results("ratelimit", run(sys.argv[1:] or ["sqlite", "postgresql"]))
