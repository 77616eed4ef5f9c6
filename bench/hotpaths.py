"""Hot paths under load: create, retrieve, callback-complete and list (WAITING + a tag),
against `waitpoint serve` in its default production configuration, each beside its floor:
a bare Flask app under the same gunicorn settings. wrk drives both (2 threads, fixed
connections). The machine drifts, so floor and product are measured in alternation,
ROUNDS times each; the ratio is the median of the per-round ratios product/floor.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from common import (
    ROOT,
    SERVE_ENV,
    RssSampler,
    bulk_load,
    fresh_app,
    support,
    tree_cpu_seconds,
    write_results,
    wrk,
)

SECONDS = 3
ROUNDS = 3
CONNECTIONS = 32
LUA = ROOT / "bench" / "lua" / "paths.lua"
TOKENS = "/api/v1/waitpoints/tokens"
PATHS = ("create", "retrieve", "callback", "list")
FLOOR_LINES = {"GET": "GET /", "POST": 'POST / {"tags":["bench"]}'}


def floor_server() -> tuple[subprocess.Popen, str]:
    from app.infra.serve import server_options

    port = support.free_port()
    options = server_options("127.0.0.1", port, {})
    command = [
        str(Path(support.waitpoint_command()[0]).with_name("gunicorn")),
        "-k",
        "gthread",
        "-w",
        str(options["workers"]),
        "--threads",
        str(options["threads"]),
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT / "bench"),
        "floor:app",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/")
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the floor server did not start")


def drive(url: str, pid: int, lines: list[str], tmp: Path, auth: str) -> dict:
    """One wrk run; adds the server's CPU time per request (all its processes)."""
    paths = tmp / "paths.txt"
    paths.write_text("\n".join(lines) + "\n")
    before = tree_cpu_seconds(pid)
    result = wrk(url, SECONDS, CONNECTIONS, LUA, {"WRK_PATHS": str(paths), "WRK_AUTH": auth})
    used = tree_cpu_seconds(pid) - before
    result["cpu_ms_per_request"] = round(used / max(result.get("requests", 0), 1) * 1000, 3)
    return result


def measure(kind: str, floor: subprocess.Popen, floor_url: str, tmp: Path) -> list[dict]:
    from app.domain.capability import callback_path
    from app.domain.stored import ID_PREFIX
    from app.extensions import db
    from app.models import Token

    url, app, key = fresh_app(kind, tmp)
    try:
        # Tokens to complete (each once: every round gets its own) and a listable population.
        bulk_load(app, 30_000, waiting_share=1.0, fixed_tags=("bench",), kinds=False)
        with app.app_context(), app.test_request_context():
            ids = [ID_PREFIX + t.public_id for t in db.session.query(Token).limit(30_000)]
            callbacks = [f'POST {callback_path(i)} {{"approved":true}}' for i in ids]
            db.engine.dispose()
        share = len(callbacks) // ROUNDS
        lines = {
            "create": lambda _: [f'POST {TOKENS} {{"tags":["bench","kind:new"],"timeout":"1h"}}'],
            "retrieve": lambda _: [f"GET {TOKENS}/{i}" for i in ids[:1000]],
            "callback": lambda r: callbacks[r * share : (r + 1) * share],
            "list": lambda _: [
                f"GET {TOKENS}?filter[status]=WAITING&filter[tags]=customer:42&page[size]=25"
            ],
        }
        server = support.ServerProcess(url, tmp, **SERVE_ENV).start()
        rows = []
        try:
            with RssSampler(server.proc.pid) as rss:
                for name in PATHS:
                    method = "POST" if name in ("create", "callback") else "GET"
                    pairs = []
                    for r in range(ROUNDS):
                        base = drive(floor_url, floor.pid, [FLOOR_LINES[method]], tmp, "Bearer x")
                        mine = drive(
                            server.url, server.proc.pid, lines[name](r), tmp, f"Bearer {key}"
                        )
                        pairs.append((base, mine))
                    rows.append(summarize(kind, name, pairs))
            for row in rows:
                row["peak_rss_mib"] = rss.peak_mib
        finally:
            server.stop()
        return rows
    finally:
        app.extensions["waitpoint_waits"].close()
        support.drop_database(url)


def summarize(kind: str, name: str, pairs: list[tuple[dict, dict]]) -> dict:
    def median(key, side):
        return round(statistics.median(p[side].get(key, 0) for p in pairs), 2)

    row = {
        "part": "hot paths",
        "database": kind,
        "what": name,
        "rps": median("rps", 1),
        "p50_ms": median("p50_ms", 1),
        "p99_ms": median("p99_ms", 1),
        "errors": sum(p[1]["errors"] for p in pairs),
        "floor_rps": median("rps", 0),
        "floor_p50_ms": median("p50_ms", 0),
        "cpu_ms_per_request": median("cpu_ms_per_request", 1),
        "floor_cpu_ms_per_request": median("cpu_ms_per_request", 0),
        "ratio": round(statistics.median(p[1]["rps"] / p[0]["rps"] for p in pairs), 2),
        "rounds": [{"floor_rps": p[0]["rps"], "rps": p[1]["rps"]} for p in pairs],
    }
    print(
        f"{kind:10} {name:9} {row['rps']:8.1f} req/s (floor {row['floor_rps']:8.1f}, "
        f"ratio {row['ratio']:.2f})  p50 {row['p50_ms']:7.2f} ms  "
        f"p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}  server CPU per request "
        f"{row['cpu_ms_per_request']:.3f} ms (floor {row['floor_cpu_ms_per_request']:.3f})",
        flush=True,
    )
    return row


def run(kinds: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, floor_url = floor_server()
        try:
            for kind in kinds:
                rows += measure(kind, proc, floor_url, Path(tmp))
        finally:
            proc.terminate()
            proc.wait()
    return rows


if __name__ == "__main__":
    import sys

    write_results("hotpaths", run(sys.argv[1:] or ["sqlite", "postgresql"]))
